"""Batch Transform jobs for the local SageMaker (endpoint mode ``none``).

Like the real service: ``CreateTransformJob`` is ``InProgress`` while a
background thread reads every object under the input ``S3Uri``, scores it
with the model's Linear Learner artifact and writes ``<object name>.out`` under
``S3OutputPath``. Input ``text/csv``, ``application/json`` or
``application/x-recordio-protobuf`` (``SplitType`` RecordIO/Line/None);
output in Linear Learner's format for ``Accept``: ``application/jsonlines``
is one ``{"score": ..., "predicted_label": ...}`` line per record (the
mini-batches joined by newlines, ``AssembleWith: Line``), ``application/json``
one ``{"predictions": [...]}`` document per mini-batch.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from local.emulator.errors import ServiceError
from local.emulator.failure_reasons import reworded
from local.emulator.job_metrics import TRANSFORM_NAMESPACE, publish_thread_job
from local.emulator.runtime_metrics import instance_id
from local.emulator.state import ServiceState
from local.emulator.wire import now, split_s3
from training.model import LinearModel
from training.payloads import choose_accept, parse_features, render

#: Records per mini-batch (MultiRecord); the real limit is MaxPayloadInMB.
RECORDS_PER_BATCH = 1000


class TransformJobsMixin(ServiceState):
    """Operations mixed into :class:`local.emulator.service.LocalSageMaker`."""

    def op_CreateTransformJob(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["TransformJobName"]
        arn = self.arn("transform-job", name)
        with self._lock:
            if name in self._transforms:
                raise ServiceError("ResourceInUse", f"Transform job {name} already exists")
            if p["ModelName"] not in self._models:
                raise ServiceError(
                    "ValidationException",
                    f'Could not find model "{self.arn("model", p["ModelName"])}".',
                )
            record = {
                "request": p,
                "arn": arn,
                "status": "InProgress",
                "created": now(),
                "started": None,
                "ended": None,
                "failure": None,
                "stop": threading.Event(),
            }
            self._transforms[name] = record
        self._put_tags(arn, p.get("Tags"))
        self._start(lambda: self._run_transform(name), f"transform-{name}")
        return {"TransformJobArn": arn}

    def _run_transform(self, name: str) -> None:
        record = self._transforms[name]
        request = record["request"]
        record["started"] = now()
        cpu, wall = time.thread_time(), time.monotonic()
        try:
            fault = self._take_fault("transform_failed")
            if fault is not None:
                raise RuntimeError(fault)
            if self._take_fault("transform_hang") is not None:
                record["stop"].wait()  # only StopTransformJob ends it
                raise _Stopped()
            model = self._transform_model(request["ModelName"], name)
            source = request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
            content_type = request["TransformInput"].get("ContentType", "text/csv")
            accept = choose_accept(request.get("TransformOutput", {}).get("Accept"))
            out_bucket, out_prefix = split_s3(
                request["TransformOutput"]["S3OutputPath"].rstrip("/") + "/"
            )
            bucket, prefix = split_s3(source)
            keys = [
                obj["Key"]
                for page in self.s3.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix=prefix
                )
                for obj in page.get("Contents", [])
                if not obj["Key"].endswith("/")
            ]
            if not keys:
                raise RuntimeError(f"ClientError: no input objects under {source}")
            for key in keys:
                if record["stop"].is_set():
                    raise _Stopped()
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                features = parse_features(body, content_type, model.feature_dim)
                parts: list[bytes] = []
                for lo in range(0, features.shape[0], RECORDS_PER_BATCH):
                    scores, labels = model.predict(features[lo : lo + RECORDS_PER_BATCH])
                    part = render(scores, labels.astype(np.int8), accept)
                    parts.append(part if part.endswith(b"\n") else part + b"\n")
                out_key = f"{out_prefix}{key.rsplit('/', 1)[-1]}.out"
                self.s3.put_object(Bucket=out_bucket, Key=out_key, Body=b"".join(parts))
            status, failure = "Completed", None
        except _Stopped:
            status, failure = "Stopped", None
        except Exception as e:  # the job fails; the service stays up
            status, failure = "Failed", reworded(f"{type(e).__name__}: {e}")
        with self._lock:
            record["status"], record["failure"], record["ended"] = status, failure, now()
        host = f"{name}/{instance_id(name, 'transform', 0)}"  # as SageMaker names the Host
        publish_thread_job(
            self.cloudwatch, TRANSFORM_NAMESPACE, host, time.thread_time() - cpu,
            time.monotonic() - wall,
        )  # fmt: skip

    def _transform_model(self, model_name: str, job: str) -> LinearModel:
        with self._lock:
            model = self._models.get(model_name)
        if model is None:
            raise RuntimeError(f"model {model_name} no longer exists")
        bucket, key = split_s3(model["request"]["PrimaryContainer"]["ModelDataUrl"])
        dest = self.work_dir / "transform" / job
        dest.mkdir(parents=True, exist_ok=True)
        artifact = dest / "model.tar.gz"
        self.s3.download_file(bucket, key, str(artifact))
        return LinearModel.load(artifact)

    def _transform_record(self, name: str) -> dict[str, Any]:
        with self._lock:
            record = self._transforms.get(name)
        if record is None:
            raise ServiceError("ResourceNotFound", f"Could not find requested job with name {name}")
        return record

    def op_DescribeTransformJob(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["TransformJobName"]
        record = self._transform_record(name)
        request = record["request"]
        with self._lock:
            out: dict[str, Any] = {
                "TransformJobName": name,
                "TransformJobArn": record["arn"],
                "TransformJobStatus": record["status"],
                "ModelName": request["ModelName"],
                "TransformInput": request["TransformInput"],
                "TransformOutput": request.get("TransformOutput", {}),
                "TransformResources": request["TransformResources"],
                "CreationTime": record["created"],
            }
            for key in ("BatchStrategy", "MaxPayloadInMB", "MaxConcurrentTransforms"):
                if key in request:
                    out[key] = request[key]
            if record["started"] is not None:
                out["TransformStartTime"] = record["started"]
            if record["ended"] is not None:
                out["TransformEndTime"] = record["ended"]
            if record["failure"]:
                out["FailureReason"] = record["failure"]
        return out

    def op_StopTransformJob(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._transform_record(p["TransformJobName"])
        with self._lock:
            if record["status"] == "InProgress":
                record["status"] = "Stopping"
        record["stop"].set()
        return {}

    def op_ListTransformJobs(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {
                "TransformJobSummaries": [
                    {
                        "TransformJobName": n,
                        "TransformJobArn": r["arn"],
                        "CreationTime": r["created"],
                        "TransformJobStatus": r["status"],
                        **({"TransformEndTime": r["ended"]} if r["ended"] else {}),
                    }
                    for n, r in self._transforms.items()
                    if p.get("NameContains", "") in n
                    and (not p.get("StatusEquals") or r["status"] == p["StatusEquals"])
                ]
            }

    def stop_all_transforms(self) -> None:
        """Shutdown: release jobs that wait for a Stop."""
        with self._lock:
            records = list(self._transforms.values())
        for record in records:
            record["stop"].set()


class _Stopped(Exception):
    pass
