"""Sharded sources: one shard per Map child, the manifest last."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY
from moto import mock_aws
from pipeline_testlib import BUCKET, REGION, make_run, make_split, stubbed

from pipeline_core.config import DEFAULTS
from pipeline_core.errors import (
    InvalidDatasetError,
    ShardConversionError,
    TooFewTrainObjectsError,
)
from pipeline_core.recordio import decode
from pipeline_core.shards import convert_shard, finalize_dataset, rows_per_object

PREFIX = "sets/digits/"
SOURCE = f"s3://{BUCKET}/{PREFIX}"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client


def npz_bytes(x: Any, y: Any, **extra: Any) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y, **extra)
    return buf.getvalue()


def csv_bytes(x: np.ndarray, y: np.ndarray) -> bytes:
    rows = [
        ",".join([str(int(label)), *(f"{v:.6f}" for v in row)])
        for label, row in zip(y, x, strict=True)
    ]
    return ("\n".join(rows) + "\n").encode()


def put(s3: Any, relative: str, body: bytes) -> dict[str, Any]:
    s3.put_object(Bucket=BUCKET, Key=PREFIX + relative, Body=body)
    return {"Key": PREFIX + relative, "Size": len(body)}


def sharded_run(name: str = "e", **raw: Any) -> Any:
    return make_run(name, {"source": SOURCE, **raw})


def put_set(s3: Any, fmt: str = "npz", train_shards: int = 2) -> list[dict[str, Any]]:
    items = []
    for split, shards, seed in (("train", train_shards, 0), ("validation", 1, 10), ("test", 1, 20)):
        for i in range(shards):
            x, y = make_split(40, seed + i)
            body = npz_bytes(x, y) if fmt == "npz" else csv_bytes(x, y)
            items.append(put(s3, f"{split}/part-{i}.{fmt}", body))
    return items


def read(s3: Any, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return data


def test_an_npz_shard_becomes_bounded_relabelled_recordio_objects(s3: Any) -> None:
    x, y = make_split(50, 3)
    item = put(s3, "train/part-0.npz", npz_bytes(x, y))
    config = replace(DEFAULTS, recordio_object_max_bytes=20 * (4 * 784 + 64))
    assert rows_per_object(config) == 20
    out = convert_shard(sharded_run(target_digit=3), config, item, s3)
    assert out == {"split": "train", "key": PREFIX + "train/part-0.npz", "rows": 50, "objects": 3}
    keys = [f"runs/e/data/train/part-0.npz.{i:04d}.rec" for i in range(3)]
    parts = [decode(read(s3, k), feature_dim=784) for k in keys]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), x)
    labels = np.concatenate([p[1] for p in parts if p[1] is not None])
    np.testing.assert_array_equal(labels, (y == 3).astype(np.float32))
    assert all(len(read(s3, k)) <= config.recordio_object_max_bytes for k in keys)
    receipt = json.loads(read(s3, "runs/e/data/shards/train/part-0.npz.json"))
    assert receipt["rows"] == 50 and [o["rows"] for o in receipt["objects"]] == [20, 20, 10]


def test_a_csv_shard_reads_the_label_from_the_first_column(s3: Any) -> None:
    x, y = make_split(30, 4)
    item = put(s3, "validation/a.csv", csv_bytes(x, y))
    convert_shard(sharded_run(target_digit=7), DEFAULTS, item, s3)
    feats, labels = decode(read(s3, "runs/e/data/validation/a.csv.0000.rec"), feature_dim=784)
    np.testing.assert_allclose(feats, x, atol=1e-6)
    assert labels is not None
    np.testing.assert_array_equal(labels, (y == 7).astype(np.float32))


def _pickled_npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x=np.array([object()], dtype=object), y=np.zeros(1))
    return buf.getvalue()


def _bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", b"\0" * (3 << 20))
        z.writestr("y.npy", b"\0")
    return buf.getvalue()


x0, y0 = make_split(10, 5)
BAD_SHARDS = [
    ("train/nan.npz", npz_bytes(np.full((4, 784), np.nan, np.float32), np.zeros(4)), "NaN"),
    ("train/big.npz", npz_bytes(x0 * 2, y0), r"\[0, 1\]"),
    ("train/label.npz", npz_bytes(x0, y0 + 10), "digits 0-9"),
    ("train/shape.npz", npz_bytes(x0[:, :100], y0), r"shape \(N, 784\)"),
    ("train/extra.npz", npz_bytes(x0, y0, z=y0), "exactly x and y"),
    ("train/object.npz", _pickled_npz(), "unreadable npz"),
    ("train/bomb.npz", _bomb(), "decompressed"),
    ("train/zip.npz", b"not a zip", "not an npz"),
    ("train/cols.csv", b"1,0.5,0.5\n", "3 columns"),
    ("train/text.csv", b"label,pixel\n", "malformed CSV"),
    ("train/pickle.pkl", pickle.dumps([1]), "unknown format"),
    ("train/utf.csv", "1,0.5\u00e9\n".encode(), "plain ASCII"),
    ("misc/part.npz", npz_bytes(x0, y0), "expected <prefix>"),
]


@pytest.mark.parametrize(("relative", "body", "reason"), BAD_SHARDS)
def test_a_bad_shard_fails_naming_it_and_leaves_a_failure_receipt(
    s3: Any, relative: str, body: bytes, reason: str
) -> None:
    item = put(s3, relative, body)
    config = replace(DEFAULTS, shard_max_bytes=2 << 20)
    with pytest.raises(InvalidDatasetError, match=reason) as caught:
        convert_shard(sharded_run(), config, item, s3)
    assert PREFIX + relative in str(caught.value)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/").get("Contents", [])]
    assert not [k for k in keys if k.endswith(".rec")]


@pytest.mark.parametrize("relative", ["", "train/", "test/"])
def test_a_zero_byte_folder_key_is_skipped_as_finalize_skips_it(s3: Any, relative: str) -> None:
    """The S3 console's "Create folder" makes ``<prefix>train/`` (0 bytes); the
    ItemReader lists it like any object."""
    item = put(s3, relative, b"")
    assert convert_shard(sharded_run(), DEFAULTS, item, s3) == {
        "key": PREFIX + relative,
        "skipped": "a folder key, not a shard",
    }
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")


def test_finalize_writes_the_manifest_last_with_rows_and_objects_per_split(s3: Any) -> None:
    run = sharded_run(training_instance_count=2)
    for item in put_set(s3, "npz", train_shards=2):
        convert_shard(run, DEFAULTS, item, s3)
    data = finalize_dataset(run, DEFAULTS, s3)
    splits = {"train": {"rows": 80, "objects": 2}, "validation": {"rows": 40, "objects": 1}}
    assert data["splits"] == {**splits, "test": {"rows": 40, "objects": 1}}
    assert data["counts"] == {"train": 80, "validation": 40, "test": 40}
    assert data["train_uri"] == f"s3://{BUCKET}/runs/e/data/train/"
    manifest = json.loads(read(s3, "runs/e/data/manifest.json"))
    assert manifest["files"]["train"] == [
        "runs/e/data/train/part-0.npz.0000.rec",
        "runs/e/data/train/part-1.npz.0000.rec",
    ]
    assert manifest["shards"] == 4 and manifest["source_kind"] == "sharded"


def test_finalize_raises_the_failing_shards_own_error_and_writes_no_manifest(s3: Any) -> None:
    run = sharded_run()
    items = put_set(s3)
    items.append(put(s3, "train/bad.npz", npz_bytes(x0 * 3, y0)))
    for item in items:
        try:
            convert_shard(run, DEFAULTS, item, s3)
        except InvalidDatasetError:
            pass  # the Map goes on (moto) or fails (AWS); Finalize names it either way
    for map_error in (None, {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "x"}):
        with pytest.raises(InvalidDatasetError, match=r"train/bad\.npz: pixel values"):
            finalize_dataset(run, DEFAULTS, s3, map_error=map_error)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/e/data/manifest")


def test_finalize_refuses_a_shard_without_receipt(s3: Any) -> None:
    run = sharded_run()
    items = put_set(s3)
    for item in items[1:]:
        convert_shard(run, DEFAULTS, item, s3)
    with pytest.raises(InvalidDatasetError, match=r"train/part-0\.npz was not converted"):
        finalize_dataset(run, DEFAULTS, s3)
    error = {"Error": "Lambda.TooManyRequestsException", "Cause": "slow down"}
    with pytest.raises(ShardConversionError, match="TooManyRequests"):
        finalize_dataset(run, DEFAULTS, s3, map_error=error)


def test_fewer_train_objects_than_instances_fails_before_the_manifest(s3: Any) -> None:
    run = sharded_run(training_instance_count=3)
    for item in put_set(s3, train_shards=2):
        convert_shard(run, DEFAULTS, item, s3)
    with pytest.raises(TooFewTrainObjectsError, match="3 instances but only 2 train objects"):
        finalize_dataset(run, DEFAULTS, s3)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/e/data/manifest")


def test_a_split_without_shards_is_refused(s3: Any) -> None:
    run = sharded_run()
    items = put_set(s3)
    s3.delete_object(Bucket=BUCKET, Key=PREFIX + "test/part-0.npz")
    for item in items[:-1]:
        convert_shard(run, DEFAULTS, item, s3)
    with pytest.raises(InvalidDatasetError, match="split 'test' has no shards"):
        finalize_dataset(run, DEFAULTS, s3)


def _body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def test_shard_calls_match_the_s3_service_model() -> None:
    """The Stubber checks every request against botocore's S3 model."""
    s3 = boto3.client("s3", region_name=REGION)
    run = sharded_run()
    x, y = make_split(5, 1)
    body = npz_bytes(x, y)
    key = PREFIX + "train/p.npz"
    with stubbed(s3) as stub:
        stub.add_response("get_object", {"Body": _body(body)}, {"Bucket": BUCKET, "Key": key})
        stub.add_response(
            "put_object",
            {},
            {
                "Bucket": BUCKET,
                "Key": "runs/e/data/train/p.npz.0000.rec",
                "Body": ANY,
                "ContentLength": ANY,
                "ContentType": "application/x-recordio-protobuf",
            },
        )
        stub.add_response(
            "put_object",
            {},
            {
                "Bucket": BUCKET,
                "Key": "runs/e/data/shards/train/p.npz.json",
                "Body": ANY,
                "ContentType": "application/json",
            },
        )
        convert_shard(run, DEFAULTS, {"Key": key, "Size": len(body)}, s3)
    receipt = {
        "source_key": key,
        "source_md5": "0",
        "split": "train",
        "rows": 5,
        "positives": 1,
        "objects": [{"key": "runs/e/data/train/p.npz.0000.rec"}],
    }
    with stubbed(s3) as stub:
        stub.add_response(
            "list_objects_v2",
            {"Contents": [{"Key": key}], "IsTruncated": False},
            {"Bucket": BUCKET, "Prefix": PREFIX},
        )
        stub.add_response(
            "get_object",
            {"Body": _body(json.dumps(receipt).encode())},
            {"Bucket": BUCKET, "Key": "runs/e/data/shards/train/p.npz.json"},
        )
        with pytest.raises(InvalidDatasetError, match="split 'validation' has no shards"):
            finalize_dataset(run, DEFAULTS, s3)


def test_shards_with_the_same_stem_in_both_formats_never_share_objects(s3: Any) -> None:
    run = sharded_run()
    x, y = make_split(10, 8)
    convert_shard(run, DEFAULTS, put(s3, "train/a.npz", npz_bytes(x, y)), s3)
    convert_shard(run, DEFAULTS, put(s3, "train/a.csv", csv_bytes(x, y)), s3)
    keys = {
        o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/e/data/train/")["Contents"]
    }
    assert keys == {"runs/e/data/train/a.npz.0000.rec", "runs/e/data/train/a.csv.0000.rec"}
