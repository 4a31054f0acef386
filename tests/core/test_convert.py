from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from moto import mock_aws
from pipeline_testlib import BUCKET, REGION, make_dataset, make_run, pickle_gz, stubbed

from pipeline_core.config import DEFAULTS
from pipeline_core.convert import convert_dataset
from pipeline_core.errors import (
    InvalidDatasetError,
    SourceAccessDeniedError,
    SourceNotFoundError,
    ThrottlingError,
)
from pipeline_core.recordio import decode

SOURCE = f"s3://{BUCKET}/sources/mnist.pkl.gz"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client


def _put_source(s3: Any, data: bytes, key: str = "sources/mnist.pkl.gz") -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)


def _read(s3: Any, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return data


def test_convert_writes_recordio_that_decodes_to_the_relabelled_arrays(s3: Any) -> None:
    ds = make_dataset((80, 30, 25))
    _put_source(s3, pickle_gz(ds))
    run = make_run("exec-1", {"source": SOURCE, "target_digit": 0})
    data = convert_dataset(run, DEFAULTS, s3)

    assert data["counts"] == {"train": 80, "validation": 30, "test": 25}
    assert data["train_uri"] == f"s3://{BUCKET}/runs/exec-1/data/train/"
    assert data["files"]["test"] == f"s3://{BUCKET}/runs/exec-1/data/test/test.rec"
    for split, (images, labels) in zip(("train", "validation", "test"), ds, strict=True):
        feats, labs = decode(_read(s3, f"runs/exec-1/data/{split}/{split}.rec"), feature_dim=784)
        np.testing.assert_array_equal(feats, images)
        assert labs is not None
        np.testing.assert_array_equal(labs, (labels == 0).astype(np.float32))


def test_convert_relabels_for_the_chosen_target_digit(s3: Any) -> None:
    ds = make_dataset()
    ds[0][1][:5] = 4
    _put_source(s3, pickle_gz(ds))
    run = make_run("exec-4", {"source": SOURCE, "target_digit": 4})
    convert_dataset(run, DEFAULTS, s3)
    _, labs = decode(_read(s3, "runs/exec-4/data/train/train.rec"))
    assert labs is not None
    np.testing.assert_array_equal(labs, (ds[0][1] == 4).astype(np.float32))


def test_convert_writes_the_manifest_last_with_counts_and_hashes(s3: Any) -> None:
    _put_source(s3, pickle_gz(make_dataset()))
    keys: list[str] = []
    original = s3.put_object

    def spy(**kwargs: Any) -> Any:
        keys.append(kwargs["Key"])
        return original(**kwargs)

    s3.put_object = spy
    convert_dataset(make_run("e", {"source": SOURCE}), DEFAULTS, s3)
    assert keys[-1] == "runs/e/data/manifest.json"
    assert len(keys) == 4
    manifest = json.loads(_read(s3, "runs/e/data/manifest.json"))
    assert manifest["counts"] == {"train": 60, "validation": 20, "test": 20}
    assert manifest["feature_dim"] == 784 and manifest["target_digit"] == 0
    assert len(manifest["source_sha256"]) == 64
    assert manifest["files"]["train"]["bytes"] == len(_read(s3, "runs/e/data/train/train.rec"))


def test_convert_retry_with_same_source_skips_reconverting(s3: Any) -> None:
    _put_source(s3, pickle_gz(make_dataset()))
    run = make_run("e", {"source": SOURCE})
    first = convert_dataset(run, DEFAULTS, s3)
    s3.delete_object(Bucket=BUCKET, Key="runs/e/data/train/train.rec")  # would be rewritten
    second = convert_dataset(run, DEFAULTS, s3)
    assert second == first
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=BUCKET, Key="runs/e/data/train/train.rec")


def test_convert_retry_with_changed_source_reconverts(s3: Any) -> None:
    _put_source(s3, pickle_gz(make_dataset((60, 20, 20))))
    run = make_run("e", {"source": SOURCE})
    convert_dataset(run, DEFAULTS, s3)
    _put_source(s3, pickle_gz(make_dataset((70, 20, 20))))
    assert convert_dataset(run, DEFAULTS, s3)["counts"]["train"] == 70


def test_convert_of_invalid_dataset_writes_no_manifest(s3: Any) -> None:
    _put_source(s3, b"not gzip at all")
    with pytest.raises(InvalidDatasetError):
        convert_dataset(make_run("e", {"source": SOURCE}), DEFAULTS, s3)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")
    assert listed.get("KeyCount", 0) == 0


def _bad_sources() -> list[tuple[str, bytes]]:
    import gzip
    import os
    import pickle

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return os.system, ("false",)

    good = make_dataset()
    raw = pickle_gz(good)
    images = np.full((60, 784), np.nan, np.float32)
    return [
        ("not gzip", pickle.dumps(good)),
        ("truncated gzip", raw[: len(raw) // 2]),
        ("not a pickle", gzip.compress(b"hello")),
        ("code payload", pickle_gz((good[0], good[1], (good[2][0], Payload())))),
        ("two splits", pickle_gz(good[:2])),
        ("wrong shape", pickle_gz(((np.zeros((60, 783), np.float32), good[0][1]), *good[1:]))),
        ("nan pixels", pickle_gz(((images, good[0][1]), *good[1:]))),
        ("target absent", pickle_gz(((good[0][0], np.full(60, 5)), *good[1:]))),
    ]


@pytest.mark.parametrize("which", range(8))
def test_convert_of_any_invalid_dataset_leaves_no_manifest_even_over_an_old_one(
    s3: Any, which: int
) -> None:
    run = make_run("e", {"source": SOURCE})
    _put_source(s3, pickle_gz(make_dataset()))
    convert_dataset(run, DEFAULTS, s3)  # an earlier, good conversion of another source
    label, bad = _bad_sources()[which]
    _put_source(s3, bad)
    with pytest.raises(InvalidDatasetError):
        convert_dataset(run, DEFAULTS, s3)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/e/data/manifest.json")
    assert listed.get("KeyCount", 0) == 0, label


def test_convert_failing_part_way_through_the_uploads_leaves_no_manifest(s3: Any) -> None:
    run = make_run("e", {"source": SOURCE})
    _put_source(s3, pickle_gz(make_dataset((60, 20, 20))))
    convert_dataset(run, DEFAULTS, s3)
    _put_source(s3, pickle_gz(make_dataset((70, 20, 20))))  # a changed source: reconvert
    original = s3.put_object

    def failing(**kwargs: Any) -> Any:
        if kwargs["Key"].endswith("test.rec"):
            raise ConnectionError("connection reset")
        return original(**kwargs)

    s3.put_object = failing
    with pytest.raises(ConnectionError):
        convert_dataset(run, DEFAULTS, s3)
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")["Contents"]}
    assert "runs/e/data/manifest.json" not in listed
    assert "runs/e/data/train/train.rec" in listed  # rewritten, but not vouched for
    s3.put_object = original
    assert convert_dataset(run, DEFAULTS, s3)["counts"]["train"] == 70  # the retry completes


def test_convert_replaces_a_broken_manifest(s3: Any) -> None:
    run = make_run("e", {"source": SOURCE})
    _put_source(s3, pickle_gz(make_dataset()))
    s3.put_object(Bucket=BUCKET, Key="runs/e/data/manifest.json", Body=b"{not json")
    assert convert_dataset(run, DEFAULTS, s3)["counts"]["train"] == 60
    assert json.loads(_read(s3, "runs/e/data/manifest.json"))["counts"]["train"] == 60


def test_convert_missing_source_object_raises_source_not_found(s3: Any) -> None:
    with pytest.raises(SourceNotFoundError, match="does not exist"):
        convert_dataset(make_run("e", {"source": SOURCE}), DEFAULTS, s3)


def test_convert_missing_source_bucket_raises_source_not_found(s3: Any) -> None:
    run = make_run("e", {"source": "s3://no-such-bucket-here/mnist.pkl.gz"})
    with pytest.raises(SourceNotFoundError):
        convert_dataset(run, DEFAULTS, s3)


@pytest.mark.parametrize(("code", "status"), [("AccessDenied", 403), ("403", 403)])
def test_convert_forbidden_source_raises_source_access_denied(code: str, status: int) -> None:
    client = boto3.client("s3", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_object",
            service_error_code=code,
            http_status_code=status,
            expected_params={"Bucket": BUCKET, "Key": "sources/mnist.pkl.gz"},
        )
        with pytest.raises(SourceAccessDeniedError):
            convert_dataset(make_run("e", {"source": SOURCE}), DEFAULTS, client)
        stub.assert_no_pending_responses()


def test_convert_head_style_404_raises_source_not_found() -> None:
    client = boto3.client("s3", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_client_error("get_object", service_error_code="404", http_status_code=404)
        with pytest.raises(SourceNotFoundError):
            convert_dataset(make_run("e", {"source": SOURCE}), DEFAULTS, client)


@pytest.mark.parametrize("as_uri", [False, True])
def test_convert_reads_local_sources_for_the_local_run(
    s3: Any, tmp_path: Path, as_uri: bool
) -> None:
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(pickle_gz(make_dataset()))
    source = path.as_uri() if as_uri else str(path)
    run = make_run("e", {"source": source}, allow_local_sources=True)
    assert convert_dataset(run, DEFAULTS, s3)["counts"]["test"] == 20


def test_convert_missing_local_source_raises_source_not_found(s3: Any, tmp_path: Path) -> None:
    run = make_run("e", {"source": str(tmp_path / "nope.pkl.gz")}, allow_local_sources=True)
    with pytest.raises(SourceNotFoundError):
        convert_dataset(run, DEFAULTS, s3)


def test_convert_unreadable_local_source_raises_access_denied(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "secret.pkl.gz"
    path.write_bytes(b"x")
    real_open = open

    def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", guarded_open)
    run = make_run("e", {"source": str(path)}, allow_local_sources=True)
    with pytest.raises(SourceAccessDeniedError):
        convert_dataset(run, DEFAULTS, s3)


# -- throttling and other S3 errors -----------------------------------------------------


def _body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def _manifest_absent(stub: Stubber, run_prefix: str = "runs/e/") -> None:
    stub.add_client_error(
        "get_object",
        service_error_code="NoSuchKey",
        http_status_code=404,
        expected_params={"Bucket": BUCKET, "Key": f"{run_prefix}data/manifest.json"},
    )


@pytest.mark.parametrize("code", ["SlowDown", "ThrottlingException", "RequestLimitExceeded"])
def test_convert_throttled_source_read_raises_throttling_error(code: str) -> None:
    client = boto3.client("s3", region_name=REGION)
    with stubbed(client) as stub:
        stub.add_client_error(
            "get_object",
            service_error_code=code,
            http_status_code=503,
            expected_params={"Bucket": BUCKET, "Key": "sources/mnist.pkl.gz"},
        )
        with pytest.raises(ThrottlingError, match="still throttled") as raised:
            convert_dataset(make_run("e", {"source": SOURCE}), DEFAULTS, client)
    assert isinstance(raised.value.__cause__, ClientError)


def test_convert_throttled_manifest_read_raises_throttling_error() -> None:
    client = boto3.client("s3", region_name=REGION)
    with stubbed(client) as stub:
        stub.add_response(
            "get_object",
            {"Body": _body(pickle_gz(make_dataset()))},
            expected_params={"Bucket": BUCKET, "Key": "sources/mnist.pkl.gz"},
        )
        stub.add_client_error(
            "get_object",
            service_error_code="SlowDown",
            http_status_code=503,
            expected_params={"Bucket": BUCKET, "Key": "runs/e/data/manifest.json"},
        )
        with pytest.raises(ThrottlingError, match="manifest"):
            convert_dataset(make_run("e", {"source": SOURCE}), DEFAULTS, client)


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [("SlowDown", 503, ThrottlingError), ("AccessDenied", 403, ClientError)],
)
def test_convert_split_write_errors_are_named_only_when_throttled(
    code: str, status: int, error: type[Exception]
) -> None:
    client = boto3.client("s3", region_name=REGION)
    with stubbed(client) as stub:
        stub.add_response(
            "get_object",
            {"Body": _body(pickle_gz(make_dataset()))},
            expected_params={"Bucket": BUCKET, "Key": "sources/mnist.pkl.gz"},
        )
        _manifest_absent(stub)
        stub.add_client_error(
            "put_object",
            service_error_code=code,
            http_status_code=status,
            expected_params={
                "Bucket": BUCKET,
                "Key": "runs/e/data/train/train.rec",
                "Body": ANY,
                "ContentLength": ANY,
                "ContentType": "application/x-recordio-protobuf",
            },
        )
        with pytest.raises(error) as raised:
            convert_dataset(make_run("e", {"source": SOURCE}), DEFAULTS, client)
    # AccessDenied keeps propagating as botocore's ClientError, not a named error.
    assert isinstance(raised.value, ClientError) == (error is ClientError)


def test_convert_throttled_manifest_write_raises_throttling_error() -> None:
    client = boto3.client("s3", region_name=REGION)
    with stubbed(client) as stub:
        stub.add_response(
            "get_object",
            {"Body": _body(pickle_gz(make_dataset()))},
            expected_params={"Bucket": BUCKET, "Key": "sources/mnist.pkl.gz"},
        )
        _manifest_absent(stub)
        for split in ("train", "validation", "test"):
            stub.add_response(
                "put_object",
                {},
                expected_params={
                    "Bucket": BUCKET,
                    "Key": f"runs/e/data/{split}/{split}.rec",
                    "Body": ANY,
                    "ContentLength": ANY,
                    "ContentType": "application/x-recordio-protobuf",
                },
            )
        stub.add_client_error(
            "put_object",
            service_error_code="SlowDown",
            http_status_code=503,
            expected_params={
                "Bucket": BUCKET,
                "Key": "runs/e/data/manifest.json",
                "Body": ANY,
                "ContentType": "application/json",
            },
        )
        with pytest.raises(ThrottlingError, match="manifest"):
            convert_dataset(make_run("e", {"source": SOURCE}), DEFAULTS, client)
