"""Evaluate the deployed endpoint on the test set (the tutorial's last step).

One single-row CSV prediction, then the whole test set in
``evaluation_chunks`` CSV requests through an injected
``invoke(body, content_type) -> bytes``, so the Lambda, the tests and the local
run each bring their own transport (:func:`endpoint_invoker` is the
sagemaker-runtime one).
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline_core.awserrors import named_errors
from pipeline_core.config import PipelineConfig
from pipeline_core.errors import EvaluationError
from pipeline_core.inputs import RunSpec
from pipeline_core.recordio import RecordIOError, decode
from pipeline_core.run_report import enrich, write_artifacts
from pipeline_core.s3io import read_bytes
from pipeline_core.scoring import Scored, rates

Invoke = Callable[[bytes, str], bytes]
CSV = "text/csv"
#: A real-time endpoint takes at most 6 MB per request (SageMaker quotas); a margin.
MAX_PAYLOAD_BYTES = 5_000_000
#: A serverless endpoint at most 4 MB (Developer Guide, "Invoke a serverless
#: endpoint"); the same margin.
SERVERLESS_MAX_PAYLOAD_BYTES = 3_300_000
#: The report's key for the scored test set (a :class:`Scored`, not JSON).
SCORED = "scored"
#: ``extra`` blocks kept out of ``$.evaluation`` (the state stays small).
REPORT_ONLY = frozenset({"lineage", "tuning_trials"})


def endpoint_invoker(runtime: Any, endpoint_name: str) -> Invoke:
    """``Invoke`` over a sagemaker-runtime client. Throttling that outlasts the
    client's retries raises ThrottlingError, which the state machine retries."""

    def invoke(body: bytes, content_type: str) -> bytes:
        with named_errors(f"InvokeEndpoint {endpoint_name}"):
            response = runtime.invoke_endpoint(
                EndpointName=endpoint_name,
                ContentType=content_type,
                Accept="application/json",
                Body=body,
            )
        data: bytes = response["Body"].read()
        return data

    return invoke


def format_csv(rows: npt.NDArray[np.float32]) -> bytes:
    """Rows as CSV (no header, no label, no trailing newline) whose values parse
    back to the very same float32 (``%.9g`` is enough digits for float32).

    Test images hold few distinct values, so each distinct value is formatted
    once and rows are joined from a lookup table: ~4x faster than formatting
    all 7.8M values of the test set one by one.
    """
    arr = np.ascontiguousarray(rows, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.size == 0:
        return b""
    uniq = np.unique(arr)
    if len(uniq) * 4 > arr.size:  # mostly distinct values: a table does not pay
        fmt = "%.9g".__mod__
        return "\n".join(",".join(map(fmt, row)) for row in arr.tolist()).encode("ascii")
    index = np.searchsorted(uniq, arr)
    tokens = np.array([(b"%.9g" % v) for v in uniq.tolist()], dtype=object)
    return b"\n".join(b",".join(tokens[row].tolist()) for row in index)


def parse_predictions(
    body: bytes, expected: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """``{"predictions": [{"score", "predicted_label"}, ...]}`` -> (scores, labels)."""
    try:
        doc = json.loads(body)
        preds = doc["predictions"]
        scores = np.array([float(p["score"]) for p in preds], dtype=np.float64)
        labels = np.array([int(p["predicted_label"]) for p in preds], dtype=np.int64)
    except (ValueError, KeyError, TypeError) as e:
        raise EvaluationError(f"endpoint returned an unexpected response: {body[:200]!r}") from e
    if len(labels) != expected:
        raise EvaluationError(f"endpoint returned {len(labels)} predictions for {expected} rows")
    if not np.isin(labels, (0, 1)).all():
        raise EvaluationError("endpoint returned predicted labels other than 0/1")
    return scores, labels


def confusion(actual: npt.ArrayLike, predicted: npt.ArrayLike) -> dict[str, int]:
    a = np.asarray(actual).astype(np.int64)
    p = np.asarray(predicted).astype(np.int64)
    return {
        "tp": int(np.sum((a == 1) & (p == 1))),
        "fp": int(np.sum((a == 0) & (p == 1))),
        "tn": int(np.sum((a == 0) & (p == 0))),
        "fn": int(np.sum((a == 1) & (p == 0))),
    }


def metrics(cm: dict[str, int]) -> dict[str, float]:
    """Accuracy, precision, recall, F1; a ratio with a zero denominator is 0.0."""
    return rates(cm["tp"], cm["fp"], cm["tn"], cm["fn"])


def evaluate_arrays(
    features: npt.NDArray[np.float32],
    labels: npt.NDArray[np.float32],
    invoke: Invoke,
    *,
    chunks: int = 100,
    parallel: int = 1,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
) -> dict[str, Any]:
    """Single-row prediction, then the whole set in ``chunks`` requests (more
    if a chunk's CSV would exceed ``max_payload_bytes``), ``parallel`` at a time."""
    n = int(features.shape[0])
    if n == 0:
        raise EvaluationError("the test set is empty")
    actual = labels.astype(np.int64)
    started = time.monotonic()
    s_scores, s_labels = parse_predictions(invoke(format_csv(features[:1]), CSV), 1)
    single = {
        "score": float(s_scores[0]),
        "predicted_label": int(s_labels[0]),
        "actual_label": int(actual[0]),
    }
    predicted = np.empty(n, dtype=np.int64)
    scores = np.empty(n, dtype=np.float64)
    sample = features[: min(n, 64)]
    row_bytes = (len(format_csv(sample)) + sample.shape[0]) / sample.shape[0]
    needed = math.ceil(n * row_bytes * 1.25 / max_payload_bytes)  # margin: rows differ
    bounds = np.linspace(0, n, min(max(chunks, needed), n) + 1).astype(np.int64)

    def score(span: tuple[int, int]) -> None:
        lo, hi = span
        got, pred = parse_predictions(invoke(format_csv(features[lo:hi]), CSV), hi - lo)
        scores[lo:hi], predicted[lo:hi] = got, pred

    spans = list(itertools.pairwise(bounds.tolist()))
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        list(pool.map(score, spans))  # re-raises the first failure
    cm = confusion(actual, predicted)
    return {
        "confusion_matrix": cm,
        "matrix": [[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]],  # rows actual, cols predicted
        "metrics": metrics(cm),
        "single_prediction": single,
        "rows": n,
        "requests": 1 + len(bounds) - 1,
        "seconds": round(time.monotonic() - started, 3),
        # Every score, for predictions.csv and report.html (write_report takes it out).
        SCORED: Scored.of(actual, scores, predicted),
    }


def evaluate_run(
    run_info: dict[str, Any],
    test_bytes: bytes,
    invoke: Invoke,
    *,
    feature_dim: int,
    chunks: int,
    parallel: int = 1,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
) -> dict[str, Any]:
    """Decode the test recordIO and evaluate. Returns the full report."""
    try:
        features, labels = decode(test_bytes, feature_dim=feature_dim)
    except RecordIOError as e:
        raise EvaluationError(f"test data is not valid recordIO: {e}") from e
    if labels is None:
        raise EvaluationError("test data has no labels")
    report = evaluate_arrays(
        features,
        labels,
        invoke,
        chunks=chunks,
        parallel=parallel,
        max_payload_bytes=max_payload_bytes,
    )
    return {**run_info, **report}


def test_object_uris(s3: Any, data: dict[str, Any]) -> list[str]:
    """The test objects: ``data.files.test``, or the manifest's list (sharded
    sources keep object lists out of the state)."""
    files = (data.get("files") or {}).get("test")
    if isinstance(files, str):
        return [files]
    if "splits" in data and data.get("manifest_uri"):
        manifest = json.loads(read_bytes(s3, data["manifest_uri"]))
        listed = manifest.get("files", {}).get("test")
        if isinstance(listed, list) and listed:
            bucket = str(data["manifest_uri"])[len("s3://") :].split("/", 1)[0]
            return [f"s3://{bucket}/{key}" for key in listed]
    return [f"{data['test_uri'].rstrip('/')}/test.rec"]


def evaluate_deployment(
    run: RunSpec,
    data: dict[str, Any],
    deployed: dict[str, Any],
    config: PipelineConfig,
    s3: Any,
    invoke: Invoke,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate the endpoint on ``data.files.test`` (a sharded source: the
    manifest's test objects), write ``report.json``; returns ``$.evaluation``."""
    test_uris = test_object_uris(s3, data)
    test_uri = test_uris[0] if len(test_uris) == 1 else data["test_uri"]
    report = evaluate_run(
        {
            "execution_name": run.execution_name,
            "endpoint_name": deployed.get("endpoint_name"),
            "endpoint_config_name": deployed.get("endpoint_config_name"),
            "model_name": deployed.get("model_name"),
            "target_digit": run.target_digit,
            "test_uri": test_uri,
        },
        # recordIO records frame themselves: the objects' bytes concatenate.
        b"".join(read_bytes(s3, uri) for uri in test_uris),
        invoke,
        feature_dim=config.feature_dim,
        chunks=config.evaluation_chunks,
        parallel=config.evaluation_parallelism,
        max_payload_bytes=(
            SERVERLESS_MAX_PAYLOAD_BYTES if run.endpoint_mode == "serverless" else MAX_PAYLOAD_BYTES
        ),
    )
    return write_report(run, s3, report, extra)


def write_report(
    run: RunSpec, s3: Any, report: dict[str, Any], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write ``report.json`` (with the ``extra`` blocks, e.g. endpoint, cost and
    lineage) and, from the scored test set, ``predictions.csv`` and
    ``report.html`` beside it; returns ``$.evaluation``."""
    report = {**report, **(extra or {})}
    scored = report.pop(SCORED, None)
    written: dict[str, str] = {}
    if isinstance(scored, Scored):
        report = enrich(report, scored)
        written = write_artifacts(run, s3, report, scored)
    key = f"{run.prefix}report.json"
    with named_errors("S3 PutObject (report)"):
        s3.put_object(
            Bucket=run.bucket,
            Key=key,
            Body=json.dumps(report, indent=2, sort_keys=True).encode(),
            ContentType="application/json",
        )
    return {
        "confusion_matrix": report["confusion_matrix"],
        "metrics": report["metrics"],
        "single_prediction": report["single_prediction"],
        "report_uri": f"s3://{run.bucket}/{key}",
        **({"report_html_uri": written["report.html"]} if written else {}),
        **{k: v for k, v in (extra or {}).items() if k not in REPORT_ONLY},
    }
