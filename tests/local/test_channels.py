"""Channels as SageMaker's File mode lays them out."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import numpy as np
import pytest
from moto import mock_aws

from local.emulator.channels import ChannelError, download_channel
from pipeline_core.recordio import decode, encode_dense


def channel(uri: str, data_type: str = "S3Prefix", content_type: str | None = None) -> dict:
    out: dict = {
        "ChannelName": "train",
        "DataSource": {"S3DataSource": {"S3DataType": data_type, "S3Uri": uri}},
    }
    if content_type:
        out["ContentType"] = content_type
    return out


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="chan-bucket")
        yield client


def rows(path: Path) -> int:
    return sum(decode(f.read_bytes())[0].shape[0] for f in sorted(path.iterdir()))


def test_a_prefix_is_every_key_that_starts_with_it(s3, tmp_path: Path) -> None:
    x = np.ones((3, 2), dtype=np.float32)
    y = np.zeros(3, dtype=np.float32)
    s3.put_object(Bucket="chan-bucket", Key="d/train/recordio-pb-data", Body=encode_dense(x, y))
    s3.put_object(Bucket="chan-bucket", Key="d/train/more/part", Body=encode_dense(x[:1], y[:1]))
    s3.put_object(Bucket="chan-bucket", Key="d/train-extra", Body=encode_dense(x[:2], y[:2]))
    one = download_channel(
        s3, channel("s3://chan-bucket/d/train/recordio-pb-data"), tmp_path / "one"
    )
    assert [p.name for p in one.iterdir()] == ["00000-recordio-pb-data"] and rows(one) == 3
    # "d/train" also matches "d/train-extra", exactly as an S3 prefix does on AWS
    assert rows(download_channel(s3, channel("s3://chan-bucket/d/train"), tmp_path / "all")) == 6
    assert rows(download_channel(s3, channel("s3://chan-bucket/d/train/"), tmp_path / "dir")) == 4


def test_manifest_file_and_csv_channels(s3, tmp_path: Path) -> None:
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    y = np.array([1, 0, 1], dtype=np.float32)
    s3.put_object(Bucket="chan-bucket", Key="m/shard-0", Body=encode_dense(x[:2], y[:2]))
    s3.put_object(Bucket="chan-bucket", Key="m/shard-1", Body=encode_dense(x[2:], y[2:]))
    manifest = [{"prefix": "s3://chan-bucket/m/"}, "shard-0", "shard-1"]
    s3.put_object(
        Bucket="chan-bucket", Key="m/.amazon.manifest", Body=json.dumps(manifest).encode()
    )
    got = download_channel(
        s3, channel("s3://chan-bucket/m/.amazon.manifest", "ManifestFile"), tmp_path / "m"
    )
    assert rows(got) == 3
    s3.put_object(Bucket="chan-bucket", Key="c/train.csv", Body=b"1,0.5,0.25\n0,1.5,2.5\n")
    csv = download_channel(
        s3, channel("s3://chan-bucket/c/", content_type="text/csv"), tmp_path / "c"
    )
    (file,) = list(csv.iterdir())
    features, labels = decode(file.read_bytes())
    assert features.tolist() == [[0.5, 0.25], [1.5, 2.5]] and labels.tolist() == [1.0, 0.0]


def test_an_empty_channel_is_a_client_error(s3, tmp_path: Path) -> None:
    with pytest.raises(
        ChannelError, match='No S3 objects found under S3 URL "s3://chan-bucket/nothing/"'
    ):
        download_channel(s3, channel("s3://chan-bucket/nothing/"), tmp_path / "e")


def test_a_large_object_is_fetched_with_one_whole_get(s3, tmp_path: Path) -> None:
    """moto reads the whole object for every ranged GET it answers, so a
    channel object is fetched in one GET, whatever its size."""
    x = np.zeros((3000, 784), dtype=np.float32)  # about 9.5 MB: boto3 would split it
    s3.put_object(
        Bucket="chan-bucket", Key="big/train", Body=encode_dense(x, np.zeros(3000, np.float32))
    )
    gets: list[str | None] = []
    s3.meta.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **_: gets.append(params.get("Range"))
    )
    out = download_channel(s3, channel("s3://chan-bucket/big/train"), tmp_path / "big")
    assert rows(out) == 3000
    assert gets == [None]
