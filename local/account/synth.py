"""Take the pipeline from ``cdk synth`` output, not from a hand-written copy.

:func:`synthesize` runs ``app.py`` and caches the template under ``.build/``
keyed by a hash of the CDK sources. It skips asset bundling (the local run
imports the handlers from the source tree), cdk-nag's checks and the CDK's
built-in CloudFormation template validation: both read the template and change
nothing in it, and ``make synth`` and ``cdk deploy`` run them.
:class:`SynthesizedPipeline` resolves the CloudFormation intrinsics in the
state machine definition and the Lambda environments (with :mod:`stacks.asl`),
so the local run executes exactly the ASL that ``cdk deploy`` would create.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from local.account.lambda_dispatch import LambdaFunction
from pipeline_core.config import CONFIG_ENV, SKIP_NAG_ENV
from stacks import asl

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".build"
# Everything the synthesized template can depend on (stacks/ imports the
# config and the error classes from pipeline_core/; lambdas/ is the asset).
_SOURCES = ("app.py", "cdk.json", "stacks", "pipeline_core", "lambdas")


#: The CDK modules of over 250 kB that ``app.py`` imports, in the order it
#: imports them (about 35 MB of Python). Where their bytecode is not cached yet
#: (a fresh clone), Python compiles them one at a time as they are imported:
#: about 10 s of CPU here, most of a cold synth. A second process compiles them
#: from the end of this list while ``app.py`` imports from its start.
#: ``tests/local/test_synth.py`` checks the list against what ``app.py`` imports.
CDK_MODULES = (
    "aws_cdk.cloud_assembly_schema",
    "aws_cdk",
    "aws_cdk.aws_iam",
    "aws_cdk.aws_kms",
    "aws_cdk.aws_logs",
    "aws_cdk.interfaces.aws_ec2",
    "aws_cdk.aws_ec2",
    "aws_cdk.aws_applicationautoscaling",
    "aws_cdk.aws_lambda",
    "aws_cdk.aws_stepfunctions",
    "aws_cdk.aws_cloudwatch",
    "aws_cdk.aws_events",
    "aws_cdk.aws_events_targets",
    "aws_cdk.aws_sagemaker",
    "aws_cdk.aws_dynamodb",
    "aws_cdk.aws_sns",
    "aws_cdk.aws_scheduler",
    "aws_cdk.aws_s3",
    "aws_cdk.aws_stepfunctions_tasks",
)


class SynthError(RuntimeError):
    """The CDK app did not synthesize, or its template lacks the pipeline."""


def _source_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for entry in _SOURCES:
        path = root / entry
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts or not file.exists():
                continue
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _cdk_json_context(root: Path) -> dict[str, Any]:
    cdk_json = root / "cdk.json"
    if not cdk_json.exists():
        return {}
    context: dict[str, Any] = json.loads(cdk_json.read_text()).get("context", {})
    return context


def uncompiled(modules: tuple[str, ...] = CDK_MODULES) -> list[Path]:
    """The source files of ``modules`` (packages of this interpreter) whose
    bytecode is not cached, found without importing anything."""
    out: list[Path] = []
    for name in modules:
        top, _, rest = name.partition(".")
        spec = importlib.util.find_spec(top)  # a top-level find imports nothing
        if spec is None or spec.origin is None:
            continue
        package = Path(spec.origin).parent
        source = package.joinpath(*rest.split("."), "__init__.py") if rest else Path(spec.origin)
        if source.is_file() and not Path(importlib.util.cache_from_source(str(source))).exists():
            out.append(source)
    return out


def start_precompile(sources: list[Path]) -> subprocess.Popen[bytes] | None:
    """Compile ``sources`` to cached bytecode, last first, in a second process
    (``python -m py_compile``); ``None`` when there is nothing to compile."""
    if not sources:
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "py_compile", *(str(p) for p in reversed(sources))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def synthesize(root: Path = ROOT, use_cache: bool = True) -> SynthesizedPipeline:
    """Synthesize the app (or reuse a cached synth of the same sources)."""
    key = _source_hash(root)
    outdir = root / ".build" / f"cdk.out.local-{key}"
    templates = sorted(outdir.glob("*.template.json")) if use_cache else []
    if not templates:
        # Synthesize beside the cache, then rename: a concurrent synth of the
        # same sources (parallel test workers) never reads a half-written one.
        (root / ".build").mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="synth-", dir=root / ".build"))
        env = {
            **os.environ,
            "CDK_OUTDIR": str(staging),
            # As the CDK CLI does: cdk.json's context goes in CDK_CONTEXT_JSON.
            "CDK_CONTEXT_JSON": json.dumps(
                {**_cdk_json_context(root), "aws:cdk:bundling-stacks": []}
            ),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            # cdk-nag and the CDK's CloudFormation validation (a WASM engine,
            # about half of a cold synth) check the template without changing
            # it; a test compares this synth's definition with the CDK CLI's,
            # both checks on.
            SKIP_NAG_ENV: "1",
            "CDK_VALIDATION": "false",
        }
        compiling = start_precompile(uncompiled())
        try:
            proc = subprocess.run(
                [sys.executable, str(root / "app.py")],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
            )
        finally:
            if compiling is not None:  # done with, or app.py compiled the rest itself
                compiling.kill()
                compiling.wait()
        if proc.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise SynthError(f"cdk synth failed:\n{proc.stderr[-4000:]}")
        try:
            staging.rename(outdir)
        except OSError:  # another process renamed the same synth first
            shutil.rmtree(staging, ignore_errors=True)
        templates = sorted(outdir.glob("*.template.json"))
        for stale in (root / ".build").glob("cdk.out.local-*"):
            if stale != outdir:
                shutil.rmtree(stale, ignore_errors=True)
    for path in templates:
        template = json.loads(path.read_text())
        if any(
            r.get("Type") == "AWS::StepFunctions::StateMachine"
            for r in template.get("Resources", {}).values()
        ):
            return SynthesizedPipeline(template, source=path)
    raise SynthError(f"no template with a state machine in {outdir}")


def synthesize_in_background(root: Path = ROOT) -> Future[SynthesizedPipeline]:
    """:func:`synthesize` in a daemon thread. The synth is a subprocess, so it
    overlaps the dataset check and the account's start-up; ``result()`` waits
    (and re-raises :class:`SynthError`)."""
    future: Future[SynthesizedPipeline] = Future()

    def work() -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(synthesize(root))
            except BaseException as e:  # handed to whoever waits on the future
                future.set_exception(e)

    threading.Thread(target=work, name="synth", daemon=True).start()
    return future


class SynthesizedPipeline:
    """The synthesized template, resolved by :mod:`stacks.asl` the way
    CloudFormation would resolve it in the local region and account."""

    def __init__(self, template: dict[str, Any], source: Path | None = None) -> None:
        self.template = template
        self.source = source

    def state_machine_id(self) -> str:
        ids = asl.state_machine_ids(self.template)
        handlers = set(self._function_ids())
        for lid in ids:
            body = json.dumps(self.template["Resources"][lid]["Properties"])
            if any(fid in body for fid in handlers):
                return lid
        raise SynthError(f"no state machine invokes the pipeline's Lambdas (found {ids})")

    def definition(self, *, region: str, account: str) -> dict[str, Any]:
        return asl.extract_definition(
            self.template, region=region, account=account, logical_id=self.state_machine_id()
        )

    def lambda_functions(
        self,
        *,
        region: str,
        account: str,
        overrides: dict[str, str] | None = None,
        config_overrides: dict[str, Any] | None = None,
    ) -> dict[str, LambdaFunction]:
        """The pipeline's functions keyed by the ARN the definition uses."""
        out: dict[str, LambdaFunction] = {}
        for arn, info in asl.lambda_functions_by_arn(
            self.template, region=region, account=account
        ).items():
            if not info["handler"].startswith("lambdas."):
                continue  # CDK's own helpers (auto-delete objects, log retention)
            env = dict(info["environment"])
            if config_overrides and CONFIG_ENV in env:
                # Only local knobs (short waits, loop bounds in tests) change.
                config = {**json.loads(env[CONFIG_ENV]), **config_overrides}
                env[CONFIG_ENV] = json.dumps(config, sort_keys=True)
            env.update(overrides or {})
            out[arn] = LambdaFunction(
                logical_id=info["logical_id"],
                handler=info["handler"],
                environment=env,
                timeout_seconds=info["timeout"],
                memory_mb=info["memory_size"],
            )
        return out

    def _function_ids(self) -> list[str]:
        return [
            lid
            for lid, info in asl.lambda_functions(self.template).items()
            if info["handler"].startswith("lambdas.")
        ]


def override_retry_interval(definition: Any, error: str, seconds: int) -> int:
    """Set ``IntervalSeconds`` of every Retry on ``error`` in an ASL definition
    (nested Maps and Parallels included), in place; how many were set. The
    local account waits seconds for an endpoint lease, not the cloud's
    minutes: the definition keeps its shape, only the interval changes."""
    count = 0
    if isinstance(definition, dict):
        for retrier in definition.get("Retry") or []:
            if isinstance(retrier, dict) and error in (retrier.get("ErrorEquals") or []):
                retrier["IntervalSeconds"] = seconds
                count += 1
        for value in definition.values():
            if isinstance(value, dict | list):
                count += override_retry_interval(value, error, seconds)
    elif isinstance(definition, list):
        for item in definition:
            count += override_retry_interval(item, error, seconds)
    return count
