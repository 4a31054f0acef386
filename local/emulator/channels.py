"""Training channels as SageMaker's File mode lays them out.

- ``S3Prefix``: every object whose key starts with the URI's key is part of
  the channel, as on AWS, including a prefix that names one object
  (``s3://b/train/recordio-pb-data``, as the tutorial writes);
- ``ManifestFile``: the URI names a JSON manifest ``[{"prefix": "s3://b/p/"},
  "rel/key1", ...]`` (what the SDK's ``record_set`` writes);
- ``ContentType: text/csv`` channels (label first, no header) are converted
  to recordIO-protobuf on download, which is what the local trainer reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from boto3.s3.transfer import TransferConfig

from pipeline_core import recordio

#: One GET per object. boto3's default splits objects over 8 MB into ranged
#: GETs, and moto 5.2.5 reads the whole object for each range it answers: a
#: 157 MB training channel was 20 full copies per job.
WHOLE_OBJECT = TransferConfig(multipart_threshold=1 << 40, use_threads=False)


class ChannelError(RuntimeError):
    """A channel's data could not be fetched (the training job's FailureReason)."""


def split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ChannelError(f"not an s3 URI: {uri}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _keys_under(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/"))
    return keys


def _manifest_keys(s3: Any, uri: str) -> tuple[str, list[str]]:
    bucket, key = split_s3(uri)
    try:
        entries = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        base = entries[0]["prefix"]
    except Exception as e:
        raise ChannelError(f"ClientError: cannot read manifest file {uri}: {e}") from e
    base_bucket, base_key = split_s3(base)
    return base_bucket, [base_key + str(rel) for rel in entries[1:]]


def no_objects_message(uri: str, role_arn: str) -> str:
    """SageMaker's words for a channel prefix with no objects under it."""
    bucket = uri[5:].partition("/")[0] if uri.startswith("s3://") else uri
    return (
        f'No S3 objects found under S3 URL "{uri}" given in input data source. Please '
        "ensure that the bucket exists in the selected region, that objects exist under "
        f'that S3 prefix, and that the role "{role_arn}" has "s3:ListBucket" permissions '
        f'on bucket "{bucket}".'
    )


def download_channel(
    s3: Any, channel: Mapping[str, Any], dest: Path, *, role_arn: str = ""
) -> Path:
    """Fetch one ``InputDataConfig`` channel into ``dest`` (a folder);
    ``role_arn`` (the job's role) is named in the error of an empty prefix."""
    source = channel["DataSource"]["S3DataSource"]
    uri = source["S3Uri"]
    data_type = source.get("S3DataType", "S3Prefix")
    if data_type == "ManifestFile":
        bucket, keys = _manifest_keys(s3, uri)
        base = ""
    elif data_type == "S3Prefix":
        bucket, base = split_s3(uri)
        keys = _keys_under(s3, bucket, base)
    else:
        raise ChannelError(f"S3DataType {data_type} is not supported locally")
    if not keys:
        raise ChannelError(f"ClientError: {no_objects_message(uri, role_arn)}")
    dest.mkdir(parents=True, exist_ok=True)
    csv = (channel.get("ContentType") or "").split(";")[0].strip().lower() == "text/csv"
    for i, key in enumerate(sorted(keys)):
        rest = key[len(base) :].lstrip("/") if base and key.startswith(base) else ""
        # A prefix naming one object leaves nothing after it: use the key's last part.
        name = rest.replace("/", "_") or key.rsplit("/", 1)[-1] or f"part-{i}"
        target = dest / f"{i:05d}-{name}"
        s3.download_file(bucket, key, str(target), Config=WHOLE_OBJECT)
        if csv:
            _csv_to_recordio(target)
    return dest


def _csv_to_recordio(path: Path) -> None:
    """``label,f1,f2,...`` rows -> a recordIO-protobuf file in place."""
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
    except ValueError as e:
        raise ChannelError(f"ClientError: {path.name} is not numeric CSV: {e}") from e
    if table.shape[1] < 2:
        raise ChannelError(f"ClientError: {path.name}: CSV rows need a label and features")
    path.write_bytes(recordio.encode_dense(table[:, 1:], table[:, 0].copy()))
