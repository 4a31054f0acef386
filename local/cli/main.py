"""``python -m local``: the command lines. ``run`` checks its input and starts the
synth before it imports the run itself (:mod:`local.cli.run_cmd`), so a bad
input fails in a moment and the synth overlaps the imports (``make run``)."""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.account.input_check import InputCheckError, check_input
from local.account.mnist_cache import DatasetCacheError
from local.account.synth import SynthError, synthesize_in_background
from local.cli import approve as approve_cli
from local.cli import make_dataset
from local.cli import services_cmd as account_cli
from local.cli.make_args import ArgsSyntaxError, split_args


class UsageError(ValueError):
    """Bad command-line input."""


def _parse_input(raw: str | None) -> dict[str, Any]:
    if raw is None:
        return {}
    text = raw
    if raw.startswith("@"):
        path = Path(raw[1:])
        if not path.is_file():
            raise UsageError(f"--input: no such file {path}")
        text = path.read_text()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"--input is not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise UsageError("--input must be a JSON object, like the console's execution input")
    return value


def _execution_name(explicit: str | None) -> str:
    if explicit:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,80}", explicit):
            raise UsageError("--name: 1-80 letters, digits, '-' or '_'")
        return explicit
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"local-{stamp}-{secrets.token_hex(2)}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local",
        description=(
            "Run the MNIST Linear Learner pipeline locally: the state machine that "
            "cdk synth emits, the real Lambda handlers, moto for S3/SNS/Step Functions "
            "and a local Linear Learner for SageMaker. No AWS account needed."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the pipeline once", description="Run the pipeline once.")
    run.add_argument(
        "--input",
        help=(
            "execution input as JSON or @file.json (same schema as the console), "
            "e.g. '{\"target_digit\": 3}'"
        ),
    )
    run.add_argument("--out", type=Path, help="output folder (default runs/<execution-name>/)")
    run.add_argument(
        "--name",
        help="execution name (default local-<timestamp>-<random>); it seeds the tuner, "
        "so the same name repeats a run",
    )
    run.add_argument(
        "--serve",
        action="store_true",
        help="keep the endpoint up after the run and print how to call it, until Ctrl-C",
    )
    run.add_argument(
        "--verbose",
        action="store_true",
        help="show every state as it is entered and the Lambda handlers' logs (INFO and up)",
    )
    run.add_argument(
        "--keep-bucket",
        action="store_true",
        help="also copy every object the pipeline wrote to S3 into OUT/bucket/ "
        "(report.json lists their keys either way)",
    )
    run.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="stop the execution after this many seconds (default 1800)",
    )
    run.add_argument(
        "--poll-seconds",
        type=int,
        default=1,
        help="Wait-state seconds for the polling loops (cloud default 60; local 1)",
    )
    account_cli.add_parser(sub)
    approve_cli.add_parser(sub)
    make_dataset.add_parser(sub)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM does what Ctrl-C does: the execution is stopped, the report written."""
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    execution_input = _parse_input(args.input)
    name = _execution_name(args.name)
    # ValidateInput's own check against the config the synth embeds: a bad
    # input fails here, before the account starts or anything is written.
    spec = check_input(execution_input, name, overrides={"poll_seconds": args.poll_seconds})
    out_dir: Path = args.out or Path("runs") / name
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        # The synth first: it runs while the rest of the run's code is imported.
        synth = synthesize_in_background()
        from local.cli import run_cmd

        return run_cmd.execute(args, execution_input, name, out_dir, spec.max_jobs, synth)
    except KeyboardInterrupt:
        # Before the execution started: nothing ran yet to stop.
        from local.cli.run_cmd import stopped

        return stopped(out_dir, name, False, "interrupted before the execution started", None)
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    if argv is None and os.environ.get("MNIST_LL_MAKE_ARGS") == "1":
        # `make run ARGS='…'`: the arguments come whole through the environment.
        try:
            command = os.environ.get("MNIST_LL_MAKE_COMMAND", "run")
            argv = [command, *split_args(os.environ.get("ARGS", ""))]
        except ArgsSyntaxError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    args = parser.parse_args(argv)
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    try:
        if args.command == "run":
            return run(args)
        if args.command == "services":
            return account_cli.run(args)
        if args.command == "approve":
            return approve_cli.run(args)
        if args.command == "make-dataset":
            return make_dataset.main(args)
    except InputCheckError as e:
        print(f"error: InvalidInput: {e}", file=sys.stderr)
        return 2
    except (UsageError, DatasetCacheError, SynthError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 2
