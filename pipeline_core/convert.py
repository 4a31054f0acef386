"""ConvertDataset: source pickle -> validated, relabelled recordIO-protobuf in S3.

Layout (DESIGN.md): ``runs/<execution>/data/<split>/<split>.rec`` and, written
last because it marks the data usable, ``runs/<execution>/data/manifest.json``.
A retry whose manifest already records the same source sha256 (and target
digit / feature width) skips the work and returns the same result.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

from pipeline_core.awserrors import named_errors, raise_named
from pipeline_core.config import PipelineConfig
from pipeline_core.dataset import SPLIT_NAMES, load_mnist, relabel
from pipeline_core.inputs import RunSpec
from pipeline_core.recordio import encode_dense_array
from pipeline_core.s3io import BufferReader, error_code, read_source

RECORDIO_CONTENT_TYPE = "application/x-recordio-protobuf"
MANIFEST_VERSION = 1


def data_key(run: RunSpec, split: str) -> str:
    return f"{run.prefix}data/{split}/{split}.rec"


def manifest_key(run: RunSpec) -> str:
    return f"{run.prefix}data/manifest.json"


def data_result(run: RunSpec, manifest: dict[str, Any]) -> dict[str, Any]:
    """The ``$.data`` dict. ``*_uri`` are channel prefixes (what a tuning job's
    S3Prefix wants); ``files`` are the objects themselves."""
    return {
        "train_uri": run.s3_uri("data/train/"),
        "validation_uri": run.s3_uri("data/validation/"),
        "test_uri": run.s3_uri("data/test/"),
        "files": {split: run.s3_uri(f"data/{split}/{split}.rec") for split in SPLIT_NAMES},
        "manifest_uri": run.s3_uri("data/manifest.json"),
        "counts": dict(manifest["counts"]),
        "splits": {s: {"rows": int(n), "objects": 1} for s, n in manifest["counts"].items()},
        "source_sha256": manifest["source_sha256"],
    }


def _existing_manifest(s3: Any, run: RunSpec) -> tuple[bool, dict[str, Any] | None]:
    """``(exists, parsed)``; a broken manifest exists but parses to None."""
    try:
        body = s3.get_object(Bucket=run.bucket, Key=manifest_key(run))["Body"]
    except ClientError as e:
        if error_code(e) in ("NoSuchKey", "404", "NotFound"):
            return False, None
        raise_named(e, "S3 GetObject (manifest)")
    try:
        manifest: dict[str, Any] = json.loads(body.read())
    except ValueError:
        return True, None  # a broken manifest is rewritten by reconverting
    return True, manifest


def convert_dataset(run: RunSpec, config: PipelineConfig, s3: Any) -> dict[str, Any]:
    """Download, validate, relabel and write the three splits; returns ``$.data``."""
    raw = read_source(s3, run.source)
    source_sha = hashlib.sha256(raw).hexdigest()

    exists, previous = _existing_manifest(s3, run)
    if (
        previous is not None
        and previous.get("source_sha256") == source_sha
        and previous.get("target_digit") == run.target_digit
        and previous.get("feature_dim") == config.feature_dim
    ):
        return data_result(run, previous)
    if exists:
        # About to overwrite the splits: the old manifest must not vouch for
        # half-rewritten data if this attempt fails part way.
        with named_errors("S3 DeleteObject (manifest)"):
            s3.delete_object(Bucket=run.bucket, Key=manifest_key(run))

    splits = load_mnist(raw, feature_dim=config.feature_dim, target_digit=run.target_digit)
    del raw
    counts: dict[str, int] = {}
    positives: dict[str, int] = {}
    files: dict[str, dict[str, Any]] = {}
    for name, split in splits.items():
        labels = relabel(split.labels, run.target_digit)
        encoded = encode_dense_array(split.images, labels)
        sha = hashlib.sha256(encoded.data).hexdigest()
        with named_errors(f"S3 PutObject ({name} split)"):
            s3.put_object(
                Bucket=run.bucket,
                Key=data_key(run, name),
                Body=BufferReader(encoded),
                ContentLength=int(encoded.nbytes),
                ContentType=RECORDIO_CONTENT_TYPE,
            )
        counts[name] = int(labels.shape[0])
        positives[name] = int(labels.sum())
        files[name] = {
            "uri": run.s3_uri(f"data/{name}/{name}.rec"),
            "bytes": int(encoded.nbytes),
            "sha256": sha,
        }
        del encoded, labels

    manifest = {
        "version": MANIFEST_VERSION,
        "execution_name": run.execution_name,
        "source": run.source,
        "source_sha256": source_sha,
        "target_digit": run.target_digit,
        "feature_dim": config.feature_dim,
        "content_type": RECORDIO_CONTENT_TYPE,
        "label": f"1.0 if digit == {run.target_digit} else 0.0",
        "counts": counts,
        "positives": positives,
        "files": files,
    }
    with named_errors("S3 PutObject (manifest)"):
        s3.put_object(
            Bucket=run.bucket,
            Key=manifest_key(run),
            Body=json.dumps(manifest, indent=2, sort_keys=True).encode(),
            ContentType="application/json",
        )
    return data_result(run, manifest)
