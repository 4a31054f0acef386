"""Endpoint mode ``none``: score the test split with a Batch Transform job.

No endpoint is created, so nothing bills once the job ends. The job reads the
test split's recordIO-protobuf (``SplitType: RecordIO``) and writes Linear
Learner's JSON Lines response, one ``{"score": ..., "predicted_label": ...}``
line per record (``Accept: application/jsonlines``, ``AssembleWith: Line``),
to ``<S3OutputPath>/<input file name>.out``, as the real container does.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import numpy.typing as npt
from botocore.exceptions import ClientError

from pipeline_core.adopt import adopt_or_collide
from pipeline_core.awserrors import is_already_exists, is_not_found, named_error
from pipeline_core.config import PipelineConfig, has_local_storage
from pipeline_core.deploy import build_model_request
from pipeline_core.errors import EvaluationError, TransformJobFailedError
from pipeline_core.evaluate import SCORED, confusion, metrics, test_object_uris
from pipeline_core.inputs import RunSpec
from pipeline_core.recordio import RecordIOError, decode
from pipeline_core.s3io import read_bytes
from pipeline_core.scoring import Scored
from pipeline_core.status import _next_poll

RECORDIO = "application/x-recordio-protobuf"
JSONLINES = "application/jsonlines"
TRANSFORM_NAME_MAX = 63
IN_PROGRESS = frozenset({"InProgress", "Stopping"})


def transform_job_name(run: RunSpec) -> str:
    """``<tuning job name>-transform`` (the tuning job name is at most 32)."""
    name = f"{run.names.tuning_job}-transform"
    assert len(name) <= TRANSFORM_NAME_MAX
    return name


def test_file_uri(data: dict[str, Any]) -> str:
    """The transform input: the test file, or for a sharded source (no
    ``files``: its objects are listed in the manifest) the test prefix."""
    files = (data.get("files") or {}).get("test")
    if files:
        return str(files)
    if "splits" in data:
        return str(data["test_uri"])
    return f"{data['test_uri'].rstrip('/')}/test.rec"


def build_transform_request(
    run: RunSpec, data: dict[str, Any], *, kms_key_arn: str | None = None
) -> dict[str, Any]:
    """Keyword arguments of ``sagemaker.create_transform_job``."""
    output: dict[str, Any] = {
        "S3OutputPath": run.s3_uri("transform/"),
        "Accept": JSONLINES,
        "AssembleWith": "Line",
    }
    resources: dict[str, Any] = {"InstanceType": run.transform_instance_type, "InstanceCount": 1}
    if kms_key_arn:
        output["KmsKeyId"] = kms_key_arn
        if not has_local_storage(run.transform_instance_type):
            resources["VolumeKmsKeyId"] = kms_key_arn
    return {
        "TransformJobName": transform_job_name(run),
        "ModelName": run.names.model,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": test_file_uri(data)}
            },
            "ContentType": RECORDIO,
            "SplitType": "RecordIO",
            "CompressionType": "None",
        },
        "TransformOutput": output,
        "TransformResources": resources,
        "Tags": run.tag_list(),
    }


def output_uri(run: RunSpec, data: dict[str, Any]) -> str:
    """Where the job writes the predictions of the test file (of a test
    prefix: the folder holding ``<object name>.out`` for each object)."""
    name = test_file_uri(data).rsplit("/", 1)[-1]
    return run.s3_uri(f"transform/{name}.out" if name else "transform/")


def start_transform(
    run: RunSpec,
    config: PipelineConfig,
    tuning: dict[str, Any],
    data: dict[str, Any],
    sm: Any,
    *,
    image_uri: str,
    role_arn: str,
    kms_key_arn: str | None = None,
) -> dict[str, Any]:
    """Create the model and the transform job (a retry adopts both). Returns ``$.deploy``."""
    model = build_model_request(run, tuning, image_uri=image_uri, role_arn=role_arn)
    model["Tags"] = run.tag_list()
    request = build_transform_request(run, data, kms_key_arn=kms_key_arn)
    for action, call, kwargs in (
        ("CreateModel", sm.create_model, model),
        ("CreateTransformJob", sm.create_transform_job, request),
    ):
        try:
            call(**kwargs)
        except ClientError as e:
            if not is_already_exists(e):
                raise named_error(e, action) from e
            _adopt_own(sm, action, kwargs)
    return {
        "mode": "none",
        "endpoint_name": None,
        "endpoint_config_name": None,
        "model_name": run.names.model,
        "transform_job_name": request["TransformJobName"],
        "output_uri": output_uri(run, data),
        "model_data_url": model["PrimaryContainer"]["ModelDataUrl"],
    }


def _adopt_own(sm: Any, action: str, request: dict[str, Any]) -> None:
    """A retry finds its model / transform job: adopt it only if its tags are this run's."""
    try:
        if action == "CreateModel":
            name = str(request["ModelName"])
            arn = str(sm.describe_model(ModelName=name)["ModelArn"])
            kind = "model"
        else:
            name = str(request["TransformJobName"])
            arn = str(sm.describe_transform_job(TransformJobName=name)["TransformJobArn"])
            kind = "transform job"
    except ClientError as e:
        raise named_error(e, action) from e
    adopt_or_collide(sm, kind, name, arn, list(request.get("Tags") or []))


def describe_transform(
    run: RunSpec, deploy: dict[str, Any], previous: dict[str, Any] | None, sm: Any
) -> dict[str, Any]:
    """One poll: ``$.transform`` ``{name, status, polls, failure_reason, seconds}``.

    ``status`` is InProgress (also while Stopping), Completed, Failed or Stopped."""
    name = str(deploy["transform_job_name"])
    try:
        described = sm.describe_transform_job(TransformJobName=name)
    except ClientError as e:
        if is_not_found(e):
            raise TransformJobFailedError(f"transform job {name} does not exist") from e
        raise named_error(e, "DescribeTransformJob") from e
    raw = str(described["TransformJobStatus"])
    polls = int((previous or {}).get("polls", 0) or 0) + 1
    if raw in IN_PROGRESS:
        _next_poll(previous, run.max_polls, f"transform job {name}")
    start, end = described.get("TransformStartTime"), described.get("TransformEndTime")
    seconds = (end - start).total_seconds() if start is not None and end is not None else 0.0
    return {
        "name": name,
        "status": "InProgress" if raw in IN_PROGRESS else raw,
        "polls": polls,
        "failure_reason": described.get("FailureReason"),
        "seconds": round(float(seconds), 3),
    }


def parse_jsonlines(
    body: bytes, expected: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Linear Learner's JSON Lines output -> (scores, predicted labels)."""
    lines = [line for line in body.decode("utf-8").splitlines() if line.strip()]
    try:
        rows = [json.loads(line) for line in lines]
        scores = np.array([float(r["score"]) for r in rows], dtype=np.float64)
        labels = np.array([int(r["predicted_label"]) for r in rows], dtype=np.int64)
    except (ValueError, KeyError, TypeError) as e:
        raise EvaluationError(f"transform output is not Linear Learner JSON Lines: {e}") from e
    if len(labels) != expected:
        raise EvaluationError(f"transform output has {len(labels)} predictions for {expected} rows")
    if not np.isin(labels, (0, 1)).all():
        raise EvaluationError("transform output has predicted labels other than 0/1")
    return scores, labels


def evaluate_transform_output(
    test_bytes: bytes, output: bytes, *, feature_dim: int, seconds: float = 0.0
) -> dict[str, Any]:
    """The same report as an endpoint evaluation, from the job's predictions."""
    try:
        _features, labels = decode(test_bytes, feature_dim=feature_dim)
    except RecordIOError as e:
        raise EvaluationError(f"test data is not valid recordIO: {e}") from e
    if labels is None or len(labels) == 0:
        raise EvaluationError("test data has no labels")
    actual = labels.astype(np.int64)
    scores, predicted = parse_jsonlines(output, len(actual))
    cm = confusion(actual, predicted)
    return {
        "confusion_matrix": cm,
        "matrix": [[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]],
        "metrics": metrics(cm),
        "single_prediction": {
            "score": float(scores[0]),
            "predicted_label": int(predicted[0]),
            "actual_label": int(actual[0]),
        },
        "rows": len(actual),
        "requests": 0,
        "seconds": seconds,
        SCORED: Scored.of(actual, scores, predicted),
    }


def transform_report(
    run: RunSpec, data: dict[str, Any], deployed: dict[str, Any], config: PipelineConfig, s3: Any
) -> dict[str, Any]:
    """Read the test split and the job's output from S3 and evaluate."""
    out = str(deployed["output_uri"])
    if out.endswith("/"):  # a sharded test split: one output per object, in order
        uris = test_object_uris(s3, data)
        test_bytes = b"".join(read_bytes(s3, u) for u in uris)
        output = b"\n".join(read_bytes(s3, f"{out}{u.rsplit('/', 1)[-1]}.out") for u in uris)
    else:
        test_bytes, output = read_bytes(s3, test_file_uri(data)), read_bytes(s3, out)
    report = evaluate_transform_output(test_bytes, output, feature_dim=config.feature_dim)
    return {
        "execution_name": run.execution_name,
        "transform_job_name": deployed.get("transform_job_name"),
        "model_name": deployed.get("model_name"),
        "target_digit": run.target_digit,
        "test_uri": test_file_uri(data),
        "predictions_uri": deployed.get("output_uri"),
        **report,
    }
