"""``python -m local run`` once its input is checked: the local account, the
execution, the report and ``--serve``.

:mod:`local.cli.main` checks the input and starts the synth before it imports
this module (boto3, moto, the local SageMaker), so the synth overlaps them.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import boto3
import numpy as np

from local.account.backend import LinearLearnerBackend
from local.account.mnist_cache import ensure_mnist
from local.account.runner import LocalPipeline, RunResult
from local.account.synth import SynthesizedPipeline
from local.cli import report as rpt
from local.cli.progress import PhaseProgress
from pipeline_core import recordio
from pipeline_core.costs import cost_line
from pipeline_core.failures import failure_message


def _state_counts(events: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in events:
        if event["type"].endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            counts[name] = counts.get(name, 0) + 1
    return counts


def _bucket_keys(bucket: str) -> list[str]:
    s3 = boto3.client("s3")
    return [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for obj in page.get("Contents", [])
    ]


def _fill_report(result: RunResult, pipeline: LocalPipeline, out_dir: Path) -> dict[str, Any]:
    report: dict[str, Any] = {
        "status": result.status,
        "execution_name": result.execution_name,
        "execution_arn": result.execution_arn,
        "seconds": round(result.seconds, 3),
        "timings": {k: round(v, 3) for k, v in result.timings.items()},
        # What a cloud execution would bill for (see bench/local_run.py).
        "state_transitions": sum(1 for e in result.events if e["type"].endswith("StateEntered")),
        "state_counts": _state_counts(result.events),
        # What the pipeline wrote to S3 (--keep-bucket copies the objects).
        "bucket": {"name": pipeline.bucket, "keys": _bucket_keys(pipeline.bucket)},
    }
    if pipeline.dispatcher is not None:
        calls = pipeline.dispatcher.invocations
        report["lambda_invocations"] = len(calls)
        seconds: dict[str, float] = {}
        for call in calls:
            seconds[call.function] = round(seconds.get(call.function, 0.0) + call.seconds, 3)
        report["lambda_seconds"] = seconds
    if pipeline.sagemaker is not None:
        report["training_jobs"] = pipeline.sagemaker.training_job_count()
    # What is left scheduled (the endpoint TTL) and what the topic was told.
    report["schedules"] = pipeline.schedules()
    report["notifications"] = pipeline.notifications()
    if result.ended is not None:
        report["ended"] = result.ended
    if result.status != "SUCCEEDED":
        report.update(
            {
                "error": result.error,
                "cause": result.cause,
                "message": failure_message(result.error, result.cause),
                "failed_state": result.failed_state,
            }
        )
        return report
    # The execution output is the pipeline's Summarize state: a compact summary.
    summary = result.output or {}
    s3 = boto3.client("s3")
    prefix = f"runs/{result.execution_name}/"
    try:
        body = s3.get_object(Bucket=pipeline.bucket, Key=f"{prefix}report.json")["Body"].read()
        stored: dict[str, Any] = json.loads(body)
    except s3.exceptions.NoSuchKey:
        stored = {}
    report["confusion_matrix"] = summary.get("confusion_matrix")
    report["metrics"] = summary.get("metrics")
    best = summary.get("best_training_job") or {}
    report["tuning_job"] = summary.get("tuning_job")
    report["best_training_job"] = {
        "name": best.get("training_job_name"),
        "hyperparameters": best.get("hyperparameters"),
        "objective": {
            "metric": best.get("objective_metric"),
            "value": best.get("objective_value"),
        },
        "model_artifacts": best.get("model_artifacts"),
        "instance_count": best.get("instance_count"),
    }
    report["data"] = {"splits": (stored.get("data") or {}).get("splits")}
    report["endpoint_name"] = summary.get("endpoint_name")
    report["model_package_arn"] = summary.get("model_package_arn")
    report["approval_status"] = summary.get("approval_status")
    report["endpoint"] = summary.get("endpoint")
    report["cost"] = summary.get("cost")
    report["target_digit"] = summary.get("target_digit", 0)
    report["single_prediction"] = summary.get("single_prediction")
    report["execution_output"] = summary
    report["evaluation"] = stored
    return report


def first_test_digit(s3: Any, bucket: str, prefix: str) -> tuple[Any, int] | None:
    """The first test record the evaluation scored (its ``single_prediction``):
    of ``data/test/test.rec``, or of the first test object the manifest lists
    (a sharded source); None when neither is there."""
    key = f"{prefix}data/test/test.rec"
    try:
        manifest = json.loads(
            s3.get_object(Bucket=bucket, Key=f"{prefix}data/manifest.json")["Body"].read()
        )
        listed = (manifest.get("files") or {}).get("test")
        if isinstance(listed, list) and listed:
            key = str(listed[0])
    except (s3.exceptions.NoSuchKey, json.JSONDecodeError):
        pass
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    feats, labels = recordio.decode(body)
    return np.asarray(feats[0]), (int(labels[0]) if labels is not None else -1)


def _plots(report: dict[str, Any], out_dir: Path, bucket: str, prefix: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    cm = report.get("confusion_matrix")
    metrics = report.get("metrics") or {}
    if cm:
        title = f"accuracy {metrics.get('accuracy', 0):.4f}, F1 {metrics.get('f1', 0):.4f}"
        rpt.plot_confusion_matrix(cm, out_dir / "confusion_matrix.png", title)
    single = report.get("single_prediction") or {}
    digit = first_test_digit(boto3.client("s3"), bucket, prefix)
    if digit is not None:
        pixels, label = digit
        rpt.plot_digit(
            pixels,
            label,
            int(single.get("predicted_label", -1)),
            float(single.get("score", float("nan"))),
            out_dir / "sample_digit.png",
            target_digit=int(report.get("target_digit", 0)),
        )


def _serve(pipeline: LocalPipeline, endpoint: str | None) -> None:
    url = f"{pipeline.sagemaker_url}/endpoints/{endpoint}/invocations"
    # Handlers first: whoever reads the URL below may interrupt at once.
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("\nThe endpoint is serving. Press Ctrl-C to stop.")
    print(f"  URL:  {url}")
    print("  curl:")
    print(
        f"    curl -s -X POST -H 'Content-Type: text/csv' --data \"$(python3 -c "
        f"\"print(','.join(['0']*784))\")\" {url}"
    )
    print("  boto3:")
    print("    row_csv = ','.join(['0'] * 784)  # one 28x28 image, pixels in [0, 1]")
    print(
        f"    boto3.client('sagemaker-runtime', endpoint_url='{pipeline.sagemaker_url}', "
        "region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='x')"
        f".invoke_endpoint(EndpointName='{endpoint}', ContentType='text/csv', Body=row_csv)"
    )
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    print("\nstopping")


def stopped(
    out_dir: Path, name: str, timed_out: bool, message: str, pipeline: LocalPipeline | None
) -> int:
    report: dict[str, Any] = {
        "status": "TIMED_OUT" if timed_out else "ABORTED",
        "execution_name": name,
        "error": "LocalTimeout" if timed_out else "Interrupted",
        "cause": message,
        "message": message,
        "failed_state": None,
    }
    if pipeline is not None and pipeline.account is not None:
        report["schedules"] = pipeline.schedules()
        report["notifications"] = pipeline.notifications()
    path = rpt.write_report(out_dir, report)
    print(f"\n{report['status']}: {message}\nreport: {path}")
    return 1 if timed_out else 130


def execute(
    args: argparse.Namespace,
    execution_input: dict[str, Any],
    name: str,
    out_dir: Path,
    max_jobs: int,
    synth: Future[SynthesizedPipeline],
) -> int:
    """Run the checked input as ``name`` against the synth (started by the
    caller, so it overlaps these imports); the exit code of ``run``."""
    t0 = time.monotonic()
    removed = rpt.clear_outputs(out_dir)
    print(f"execution {name}")
    print(f"  input: {json.dumps(execution_input)}")
    print(f"  output folder: {out_dir}" + (" (earlier run's files removed)" if removed else ""))
    # The synth, the dataset and the account's start-up do not wait on each other.
    # Without a source the pipeline reads its default, the tutorial's public
    # object, which the local account holds at its real bucket and key.
    dataset = (
        None
        if "source" in execution_input
        else ensure_mnist(progress=lambda m: print(f"dataset: {m}"))
    )
    if dataset is not None:
        print(f"  dataset    {time.monotonic() - t0:.1f}s  {dataset}")
    t_account = time.monotonic()
    work_tmp = tempfile.TemporaryDirectory(prefix="mnist-ll-run-", ignore_cleanup_errors=True)
    work = Path(work_tmp.name)
    pipeline = LocalPipeline(
        work_dir=work,
        backend=LinearLearnerBackend(work_dir=work / "backend"),
        synthesized=synth,
        poll_seconds=args.poll_seconds,
        lambda_log_level="INFO" if args.verbose else "CRITICAL",
        # --verbose keeps the per-state trace; otherwise one line per phase.
        progress=None if args.verbose else PhaseProgress(total_jobs=max_jobs),
    )
    with work_tmp, pipeline:
        print(
            f"  account    {time.monotonic() - t_account:.1f}s  moto and the local SageMaker, "
            f"with the state machine from {pipeline.synth.source}"
        )
        if dataset is not None and pipeline.account is not None:
            print(f"  source: {pipeline.account.seed_tutorial_object(dataset)}")
        try:
            result = pipeline.execute(execution_input, name, timeout=args.timeout)
        except (TimeoutError, KeyboardInterrupt) as e:
            timed_out = isinstance(e, TimeoutError)
            message = (
                str(e)
                if timed_out
                else "interrupted (Ctrl-C or SIGTERM): the execution was stopped"
            )
            return stopped(out_dir, name, timed_out, message, pipeline)
        report = _fill_report(result, pipeline, out_dir)
        count = len(report["bucket"]["keys"])
        bucket_dir = out_dir / "bucket"
        if args.keep_bucket:
            pipeline.download_bucket(bucket_dir)
        report["wall_seconds"] = round(time.monotonic() - t0, 3)
        path = rpt.write_report(out_dir, report)
        print()
        if result.status != "SUCCEEDED":
            print(f"FAILED in state {result.failed_state} ({result.error}): {report['message']}")
            print(f"report: {path}")
            return 1
        for line in rpt.summary_lines(report):
            print(line)
        if report.get("cost") and report.get("endpoint"):
            print(cost_line(report["cost"], report["endpoint"]))
        for schedule in report["schedules"]:
            print(
                f"schedule {schedule['name']}: {schedule['expression']} -> {schedule['target_arn']}"
            )
        sys.stdout.flush()
        # The pictures after the terminal's summary (matplotlib takes seconds).
        _plots(report, out_dir, pipeline.bucket, f"runs/{name}/")
        copied = (
            f"{count} bucket objects copied to {bucket_dir}"
            if args.keep_bucket
            else f"{count} bucket objects listed in it; --keep-bucket copies them"
        )
        print(f"\nreport: {path}  ({copied})")
        print(f"total {report['wall_seconds']:.1f}s")
        html = rpt.copy_run_files(boto3.client("s3"), pipeline.bucket, f"runs/{name}/", out_dir)
        if html is not None:  # the last line: what to open
            print(f"open {html}")
        if args.serve:
            if not report.get("endpoint_name"):
                print("\n--serve: endpoint mode none keeps no endpoint to serve")
                return 0
            _serve(pipeline, report.get("endpoint_name"))
    return 0
