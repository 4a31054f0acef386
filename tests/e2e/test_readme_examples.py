"""The README's examples run as written.

Every ``make run …`` line and every ``python -m local …`` line of the README's
``bash`` blocks is run through bash, block by block and in order, in a scratch
folder that links to the repository (so ``runs/`` and ``data/`` land there, not
in the checkout). ``python -m local services`` and ``approve`` are left out:
they keep a local account up until Ctrl-C, and the commands around them need
the AWS CLI. ``--help`` lines (``python -m local`` or ``python -m training``)
must print their usage. Each execution input in the README's *Run* section must
pass ValidateInput's checks.

The commands are read from the README itself, so an edited example is what
gets tested. A small generated dataset in the tutorial's layout stands in
for the MNIST cache, whether or not this machine has one: the test never
downloads, and takes the same time on every machine (`make bench` runs the
real data).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from conftest import make_digits

from local.account.mnist_cache import FILE_NAME, write_dataset
from pipeline_core.config import PipelineConfig
from pipeline_core.inputs import resolve_run

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
#: Each full pipeline run costs 15-30 s of test time: the README keeps few.
MAX_FULL_RUNS = 3
#: Entries of the checkout the scratch folder does not link: outputs land there.
_NOT_LINKED = {".git", "runs", "data"}
_FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)
_PYTHON_M = re.compile(
    r"^(?:\.venv/bin/)?python3? -m (?P<module>local|training) (?P<command>[\w-]+)"
)
_NEEDS_A_RUNNING_ACCOUNT = {"services", "approve"}
_REPORT_LINE = re.compile(r"^report: (?P<path>\S+/report\.json)", re.MULTILINE)

Kind = Literal["run", "command", "help"]


@dataclass(frozen=True)
class Example:
    line: str
    kind: Kind


def code_blocks(text: str, lang: str) -> list[str]:
    return [m["body"] for m in _FENCE.finditer(text) if m["lang"] == lang]


def _without_comment(raw: str) -> str:
    line = raw.strip()
    if line.startswith("#"):
        return ""
    return re.sub(r"\s+#\s.*$", "", line)


def classify(raw: str) -> Example | None:
    """The example a README line is, or None when this test does not run it."""
    line = _without_comment(raw)
    if re.match(r"^make run(\s|$)", line):
        return Example(line, "run")
    found = _PYTHON_M.match(line)
    if found is None:
        return None
    if line.endswith("--help"):
        return Example(line, "help")
    if found["module"] == "local" and found["command"] not in _NEEDS_A_RUNNING_ACCOUNT:
        return Example(line, "command")
    return None


def example_blocks(text: str) -> list[list[Example]]:
    """The runnable examples of each bash block that has any, in README order."""
    blocks = []
    for body in code_blocks(text, "bash"):
        examples = [e for e in map(classify, body.splitlines()) if e is not None]
        if examples:
            blocks.append(examples)
    return blocks


def section(text: str, heading: str) -> str:
    """The text under a ``## heading`` up to the next level-2 heading."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def json_objects(block: str) -> list[Any]:
    """A block holding one JSON value, or one value per line."""
    try:
        return [json.loads(block)]
    except json.JSONDecodeError:
        return [json.loads(line) for line in block.splitlines() if line.strip()]


BLOCKS = example_blocks(README.read_text())


def _block_id(block: list[Example]) -> str:
    first = block[0].line
    return re.sub(r"[^A-Za-z0-9]+", "-", first.removeprefix(".venv/bin/"))[:40].strip("-")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A folder that looks like the checkout, and the environment to run in."""
    work = tmp_path_factory.mktemp("readme")
    for entry in ROOT.iterdir():
        if entry.name not in _NOT_LINKED:
            (work / entry.name).symlink_to(entry)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"ARGS", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"}
    }
    cache = tmp_path_factory.mktemp("mnist-cache")
    splits = [make_digits(1500, 11), make_digits(400, 12), make_digits(400, 13)]
    write_dataset(cache / FILE_NAME, splits)
    env |= {"MNIST_LL_CACHE": str(cache), "MNIST_LL_OFFLINE": "1"}
    yield work, env


def _check_run(work: Path, line: str, stdout: str) -> None:
    found = _REPORT_LINE.search(stdout)
    assert found, f"{line}: no report line in\n{stdout[-3000:]}"
    report_path = work / found["path"]
    report = json.loads(report_path.read_text())
    assert report["status"] == "SUCCEEDED", f"{line}: {report.get('message')}"
    # Every source, pickle or sharded, gets its sample digit.
    for picture in ("confusion_matrix.png", "sample_digit.png"):
        assert (report_path.parent / picture).read_bytes()[:4] == b"\x89PNG", picture


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[_block_id(b) for b in BLOCKS])
def test_readme_examples_run_as_written(
    block: list[Example], scratch: tuple[Path, dict[str, str]]
) -> None:
    work, env = scratch
    for example in block:
        started = time.monotonic()
        proc = subprocess.run(
            ["bash", "-c", example.line],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        seconds = time.monotonic() - started
        output = proc.stdout[-3000:] + proc.stderr[-3000:]
        assert proc.returncode == 0, f"{example.line} exited {proc.returncode}:\n{output}"
        if example.kind == "help":
            assert proc.stdout.startswith("usage:"), output
        elif example.kind == "run":
            _check_run(work, example.line, proc.stdout)
        print(f"{seconds:6.1f}s  {example.line}")


def test_the_readme_has_examples_and_few_full_runs() -> None:
    examples = [e for block in BLOCKS for e in block]
    kinds = [e.kind for e in examples]
    assert kinds.count("run") >= 1 and kinds.count("help") >= 1
    assert "make run ARGS=" in " ".join(e.line for e in examples)
    assert kinds.count("run") <= MAX_FULL_RUNS, [e.line for e in examples if e.kind == "run"]


def test_the_extractor_keeps_commands_and_skips_the_rest() -> None:
    text = (
        "```bash\nmake run     # the pipeline\nmake test\n"
        "make run ARGS='--input {\"a\": 1} --out runs/x'\n"
        ".venv/bin/python -m local make-dataset --out d --rows 6 --shards 1\n"
        ".venv/bin/python -m local services --env-file x &   # keeps running\n"
        "python -m training tune --help\n# a comment\naws s3 ls\n```\n"
        "```json\n{}\n```\n"
    )
    assert example_blocks(text) == [
        [
            Example("make run", "run"),
            Example("make run ARGS='--input {\"a\": 1} --out runs/x'", "run"),
            Example(
                ".venv/bin/python -m local make-dataset --out d --rows 6 --shards 1", "command"
            ),
            Example("python -m training tune --help", "help"),
        ]
    ]


def test_the_run_section_inputs_pass_validate_input() -> None:
    cdk = json.loads((ROOT / "cdk.json").read_text())
    config = PipelineConfig.from_mapping(cdk["context"].get("pipeline", {}))
    inputs = [
        value
        for block in code_blocks(section(README.read_text(), "Run"), "json")
        for value in json_objects(block)
        if "execution_name" not in value  # the execution output, not an input
    ]
    assert len(inputs) >= 2
    for value in inputs:
        resolve_run(
            value,
            execution_name="readme",
            config=config,
            bucket="bucket",
            region="us-east-1",
            default_endpoint_name="mnist-ll-endpoint",
            stack_tag="stack",
        )
