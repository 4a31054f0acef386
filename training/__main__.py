"""Command line: ``python -m training {train,tune,serve} --help``.

Imports are lazy so ``--help`` is instant and a bad argument fails fast.
Exit codes: 0 success, 1 the job ran but failed (e.g. every tuning job
failed), 2 bad input (arguments, hyperparameters, data, request, model).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any


def _json_arg(value: str, what: str) -> Any:
    """``JSON`` text or ``@file`` holding JSON."""
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text()
        except OSError as e:
            raise SystemExit(_fail(f"{what}: cannot read {value[1:]}: {e}")) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise SystemExit(_fail(f"{what} is not valid JSON: {e}")) from None


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Local SageMaker Linear Learner (binary classifier): train, tune, serve.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train",
        help="run one training job",
        description="Train on recordIO-protobuf channels and write OUTPUT/model.tar.gz.",
    )
    train.add_argument("--train", required=True, type=Path, help="train channel (dir or file)")
    train.add_argument("--validation", type=Path, help="validation channel (dir or file)")
    train.add_argument(
        "--hyperparameters",
        default='{"predictor_type": "binary_classifier"}',
        help="JSON object or @file; values as SageMaker strings (numbers/booleans are "
        "converted). Default: %(default)s",
    )
    train.add_argument("--output", required=True, type=Path, help="directory for model.tar.gz")
    train.add_argument("--quiet", action="store_true", help="no per-epoch log lines")

    tune = sub.add_parser(
        "tune",
        help="run a hyperparameter tuning job",
        description="Run a CreateHyperParameterTuningJob request locally "
        "(training jobs as parallel processes).",
    )
    tune.add_argument("--request", required=True, help="request JSON or @file")
    tune.add_argument("--train", required=True, type=Path, help="train channel")
    tune.add_argument("--validation", type=Path, help="validation channel")
    tune.add_argument("--output", required=True, type=Path, help="output directory")

    serve = sub.add_parser(
        "serve",
        help="serve a model over HTTP",
        description="Serve model.tar.gz: GET /ping, POST /invocations, "
        "POST /endpoints/<name>/invocations.",
    )
    serve.add_argument("--model", required=True, type=Path, help="model.tar.gz")
    serve.add_argument("--port", type=int, default=8080, help="default %(default)s")
    serve.add_argument("--host", default="127.0.0.1", help="default %(default)s")
    return parser


def _cmd_train(args: argparse.Namespace) -> int:
    from training.errors import TrainingError
    from training.hyperparameters import to_strings
    from training.trainer import run_training_job

    raw = _json_arg(args.hyperparameters, "--hyperparameters")
    if not isinstance(raw, dict):
        return _fail("--hyperparameters must be a JSON object")
    channels = {"train": args.train}
    if args.validation is not None:
        channels["validation"] = args.validation
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        result = run_training_job(channels, to_strings(raw), args.output)
    except TrainingError as e:
        return _fail(str(e))
    summary = {
        "model": str(args.output / "model.tar.gz"),
        "metrics": result.metrics,
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "seconds": round(result.seconds, 3),
        "threshold": result.model.threshold,
        "selected_settings": result.model.training.get("selected_settings"),
    }
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_tune(args: argparse.Namespace) -> int:
    from training.errors import TrainingError
    from training.tuner import TuningJob

    request = _json_arg(args.request, "--request")
    channels = {"train": args.train}
    if args.validation is not None:
        channels["validation"] = args.validation

    def progress(event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "metric":
            return
        name = event.get("TrainingJobName", "")
        detail = ""
        if kind == "TrainingJobStarted":
            detail = json.dumps(event.get("TunedHyperParameters"))
        elif kind == "TrainingJobCompleted":
            detail = json.dumps(event.get("metrics"))
        elif kind == "TrainingJobFailed":
            detail = str(event.get("FailureReason"))
        print(f"[tune] {kind} {name} {detail}".rstrip(), file=sys.stderr, flush=True)

    try:
        job = TuningJob(request, channels, args.output, on_event=progress)
        described = job.run()
    except TrainingError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return 130
    print(json.dumps(described, indent=2, default=str))
    return 0 if described["HyperParameterTuningJobStatus"] == "Completed" else 1


def _cmd_serve(args: argparse.Namespace) -> int:
    from training.errors import ModelArtifactError
    from training.serving import serve

    if not 0 <= args.port <= 65535:
        return _fail(f"--port {args.port} is not a TCP port")

    def ready(url: str) -> None:
        print(f"serving {args.model} at {url} (Ctrl+C to stop)", file=sys.stderr, flush=True)

    try:
        serve(args.model, host=args.host, port=args.port, on_ready=ready)
    except ModelArtifactError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return 0
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"train": _cmd_train, "tune": _cmd_tune, "serve": _cmd_serve}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
