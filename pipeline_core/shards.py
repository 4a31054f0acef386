"""Sharded sources: one Distributed Map child per shard, then the manifest.

A sharded ``source`` is an ``s3://bucket/prefix/`` holding
``train/``, ``validation/`` and ``test/`` shards, each either

- ``.npz``: ``x`` an ``(n, 784)`` float32 array in [0, 1], ``y`` the digits;
- ``.csv``: no header, the digit in the first column, then the pixels (the
  way SageMaker reads CSV).

:func:`convert_shard` (one Map child) reads one shard with the same checks as
the pickle path (:func:`pipeline_core.dataset.validate_split`: shape, dtype,
NaN/inf, [0, 1], whole digits; npz without pickles, inside a decompressed
size bound), relabels it by ``target_digit`` and writes recordIO-protobuf
objects of at most ``config.recordio_object_max_bytes`` to
``runs/<execution>/data/<split>/``, then a receipt under ``data/shards/``.
:func:`finalize_dataset` (after the Map) lists the source again, requires a
receipt for every shard, sums rows and objects per split and writes
``manifest.json`` last: no partial dataset is ever marked usable.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

from pipeline_core.awserrors import named_errors
from pipeline_core.config import PipelineConfig
from pipeline_core.convert import MANIFEST_VERSION, RECORDIO_CONTENT_TYPE, manifest_key
from pipeline_core.dataset import SPLIT_NAMES, Split, relabel, validate_split
from pipeline_core.errors import (
    InvalidDatasetError,
    InvalidInputError,
    ShardConversionError,
    SourceNotFoundError,
    TooFewTrainObjectsError,
)
from pipeline_core.inputs import SOURCE_SHARDED, RunSpec
from pipeline_core.recordio import encode_dense_array
from pipeline_core.s3io import BufferReader, read_bytes, translate_read_error

SHARD_FORMATS = (".npz", ".csv")
#: Bytes of one recordIO record besides its float32 features (framing, protobuf keys).
_RECORD_OVERHEAD = 64


def shard_split(run: RunSpec, key: str) -> tuple[str, str]:
    """``(split, name)`` of a source key ``<prefix><split>/<name>.npz|.csv``."""
    if run.source_kind != SOURCE_SHARDED or not key.startswith(run.source_prefix):
        raise InvalidDatasetError(f"shard {key}: not under the source prefix {run.source_prefix}")
    relative = key[len(run.source_prefix) :]
    split, _, name = relative.partition("/")
    if split not in SPLIT_NAMES or not name or "/" in name:
        raise InvalidDatasetError(
            f"shard {key}: expected <prefix>{{train,validation,test}}/<name>.npz or .csv"
        )
    if not name.endswith(SHARD_FORMATS):
        raise InvalidDatasetError(f"shard {key}: unknown format (expected .npz or .csv)")
    return split, name


def is_folder_key(key: str) -> bool:
    """A zero-byte "folder" object (``<prefix>train/``, made by the S3
    console): listed like any object, but not a shard."""
    return key.endswith("/")


def _check_npz_sizes(raw: bytes, key: str, max_bytes: int) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile as e:
        raise InvalidDatasetError(f"shard {key}: not an npz (zip) file: {e}") from e
    names = sorted(m.filename for m in members)
    if names != ["x.npy", "y.npy"]:
        raise InvalidDatasetError(f"shard {key}: npz must hold exactly x and y, found {names}")
    total = sum(m.file_size for m in members)
    if total > max_bytes:
        raise InvalidDatasetError(
            f"shard {key}: {total} bytes decompressed, more than the {max_bytes} allowed"
        )


def read_npz(raw: bytes, key: str, *, max_bytes: int) -> tuple[Any, Any]:
    """``(x, y)`` of an npz shard; never unpickles (object arrays are refused)."""
    _check_npz_sizes(raw, key, max_bytes)
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            return data["x"], data["y"]
    except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise InvalidDatasetError(f"shard {key}: unreadable npz: {e}") from e


def read_csv(raw: bytes, key: str, *, feature_dim: int) -> tuple[Any, Any]:
    """``(x, y)`` of a CSV shard: label first, ``feature_dim`` values after it.

    Parsed straight from the bytes into float32 (digits are exact in float32),
    so the text is never copied."""
    text = io.TextIOWrapper(io.BytesIO(raw), encoding="ascii", newline="")
    try:
        table = np.loadtxt(text, delimiter=",", dtype=np.float32, ndmin=2)
    except UnicodeDecodeError as e:
        raise InvalidDatasetError(f"shard {key}: CSV must be plain ASCII numbers") from e
    except ValueError as e:
        raise InvalidDatasetError(f"shard {key}: malformed CSV: {e}") from e
    if table.shape[0] == 0:
        raise InvalidDatasetError(f"shard {key}: no rows")
    if table.shape[1] != feature_dim + 1:
        raise InvalidDatasetError(
            f"shard {key}: {table.shape[1]} columns, expected the label plus {feature_dim} features"
        )
    return table[:, 1:], table[:, 0]


def read_shard(raw: bytes, key: str, name: str, config: PipelineConfig) -> tuple[Any, Any]:
    """``(x, y)`` as stored, not yet validated."""
    if name.endswith(".npz"):
        return read_npz(raw, key, max_bytes=config.shard_max_bytes)
    return read_csv(raw, key, feature_dim=config.feature_dim)


def check_shard(x: Any, y: Any, key: str, config: PipelineConfig) -> Split:
    """The pickle path's split checks (the messages name the shard)."""
    try:
        return validate_split(key, (x, y), config.feature_dim)
    except InvalidDatasetError as e:
        raise InvalidDatasetError(str(e).replace(f"split '{key}'", f"shard {key}", 1)) from e


def rows_per_object(config: PipelineConfig) -> int:
    """Records per recordIO object so that none exceeds the configured size."""
    per_record = 4 * config.feature_dim + _RECORD_OVERHEAD
    return max(1, config.recordio_object_max_bytes // per_record)


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, size):
        yield lo, min(n, lo + size)


def object_key(run: RunSpec, split: str, name: str, index: int) -> str:
    """``<split>/<shard name>.<nnnn>.rec``: the shard's full name, so ``a.npz``
    and ``a.csv`` never share objects."""
    return f"{run.prefix}data/{split}/{name}.{index:04d}.rec"


def receipt_key(run: RunSpec, split: str, name: str) -> str:
    return f"{run.prefix}data/shards/{split}/{name}.json"


def convert_shard(
    run: RunSpec, config: PipelineConfig, item: dict[str, Any], s3: Any
) -> dict[str, Any]:
    """One Map child: ``item`` is the ItemReader's object (``Key``, ``Size``,
    ``Etag``). Returns a small summary; the receipt carries the details."""
    key = str(item.get("Key", ""))
    if not key:
        raise InvalidInputError("item: the Map item has no Key")
    if is_folder_key(key):
        return {"key": key, "skipped": "a folder key, not a shard"}
    split, name = shard_split(run, key)
    size = item.get("Size")
    if isinstance(size, int) and size > config.shard_max_bytes:
        raise InvalidDatasetError(
            f"shard {key}: {size} bytes, more than the {config.shard_max_bytes} allowed"
        )
    raw = read_bytes(s3, f"s3://{run.source_bucket}/{key}")
    if len(raw) > config.shard_max_bytes:
        raise InvalidDatasetError(
            f"shard {key}: {len(raw)} bytes, more than the {config.shard_max_bytes} allowed"
        )
    etag = hashlib.md5(raw, usedforsecurity=False).hexdigest()
    try:
        x, y = read_shard(raw, key, name, config)
        del raw  # the download is not needed once parsed: a lower peak
        shard = check_shard(x, y, key, config)
        del x, y
    except InvalidDatasetError as e:
        # The error's name does not survive a Distributed Map: keep it for Finalize.
        _put_receipt(
            s3,
            run,
            split,
            name,
            {"source_key": key, "error": {"type": type(e).__name__, "message": str(e)}},
        )
        raise
    labels = relabel(shard.labels, run.target_digit)
    objects: list[dict[str, Any]] = []
    for index, (lo, hi) in enumerate(_chunks(labels.shape[0], rows_per_object(config))):
        encoded = encode_dense_array(shard.images[lo:hi], labels[lo:hi])
        out_key = object_key(run, split, name, index)
        with named_errors(f"S3 PutObject ({out_key})"):
            s3.put_object(
                Bucket=run.bucket,
                Key=out_key,
                Body=BufferReader(encoded),
                ContentLength=int(encoded.nbytes),
                ContentType=RECORDIO_CONTENT_TYPE,
            )
        objects.append(
            {
                "key": out_key,
                "rows": hi - lo,
                "bytes": int(encoded.nbytes),
                "sha256": hashlib.sha256(encoded.data).hexdigest(),
            }
        )
        del encoded
    receipt = {
        "source_key": key,
        "source_md5": etag,
        "split": split,
        "rows": int(labels.shape[0]),
        "positives": int(labels.sum()),
        "objects": objects,
    }
    _put_receipt(s3, run, split, name, receipt)
    return {"split": split, "key": key, "rows": receipt["rows"], "objects": len(objects)}


def _put_receipt(s3: Any, run: RunSpec, split: str, name: str, receipt: dict[str, Any]) -> None:
    with named_errors("S3 PutObject (shard receipt)"):
        s3.put_object(
            Bucket=run.bucket,
            Key=receipt_key(run, split, name),
            Body=json.dumps(receipt, sort_keys=True).encode(),
            ContentType="application/json",
        )


def _list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if token:
            kwargs["ContinuationToken"] = token
        try:
            page = s3.list_objects_v2(**kwargs)
        except ClientError as e:
            raise translate_read_error(e, f"s3://{bucket}/{prefix}") from e
        keys.extend(o["Key"] for o in page.get("Contents", []) if not is_folder_key(o["Key"]))
        if not page.get("IsTruncated"):
            return keys
        token = page.get("NextContinuationToken")


def finalize_dataset(
    run: RunSpec, config: PipelineConfig, s3: Any, map_error: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Check every shard was converted, then write the manifest (last).

    Returns ``$.data`` as the pickle path does, plus ``splits.<split> =
    {rows, objects}``; the object lists stay in the manifest (``files``), so
    the state stays small whatever the shard count. After a failed Map
    (``map_error``) it raises: the failing shard's own error if a receipt
    names one, else :class:`ShardConversionError` with the Map's cause."""
    shards = _list_keys(s3, run.source_bucket, run.source_prefix)
    if not shards:
        raise InvalidDatasetError(f"source {run.source}: no shards under the prefix")
    receipts: dict[str, dict[str, Any]] = {}
    for key in shards:
        split, name = shard_split(run, key)
        try:
            body = read_bytes(s3, f"s3://{run.bucket}/{receipt_key(run, split, name)}")
        except SourceNotFoundError as e:
            if map_error:
                raise ShardConversionError(
                    f"shard {key} was not converted: {map_error.get('Error')}: "
                    f"{map_error.get('Cause')}"
                ) from e
            raise InvalidDatasetError(f"shard {key} was not converted (no receipt)") from e
        receipts[key] = json.loads(body)
        failure = receipts[key].get("error")
        if failure:
            raise InvalidDatasetError(str(failure.get("message") or f"shard {key} is invalid"))
    if map_error:
        raise ShardConversionError(
            f"converting the shards failed: {map_error.get('Error')}: {map_error.get('Cause')}"
        )
    splits: dict[str, dict[str, Any]] = {
        s: {"rows": 0, "objects": 0, "positives": 0, "files": []} for s in SPLIT_NAMES
    }
    identity = hashlib.sha256()
    for key in sorted(receipts):
        r = receipts[key]
        entry = splits[r["split"]]
        entry["rows"] += int(r["rows"])
        entry["positives"] += int(r["positives"])
        entry["objects"] += len(r["objects"])
        entry["files"].extend(o["key"] for o in r["objects"])
        identity.update(f"{key}:{r['source_md5']}\n".encode())
    for split, entry in splits.items():
        if entry["rows"] == 0:
            raise InvalidDatasetError(f"split '{split}' has no shards under {run.source}")
        entry["files"].sort()
    if splits["train"]["positives"] == 0:
        raise InvalidDatasetError(
            f"split 'train' has no example of target digit {run.target_digit}"
        )
    train_objects = splits["train"]["objects"]
    if train_objects < run.training_instance_count:
        raise TooFewTrainObjectsError(
            f"training_instance_count: {run.training_instance_count} instances but only "
            f"{train_objects} train objects; ShardedByS3Key gives each instance whole objects"
        )
    manifest = {
        "version": MANIFEST_VERSION,
        "execution_name": run.execution_name,
        "source": run.source,
        "source_kind": SOURCE_SHARDED,
        "source_sha256": identity.hexdigest(),
        "shards": len(receipts),
        "target_digit": run.target_digit,
        "feature_dim": config.feature_dim,
        "content_type": RECORDIO_CONTENT_TYPE,
        "label": f"1.0 if digit == {run.target_digit} else 0.0",
        "counts": {s: e["rows"] for s, e in splits.items()},
        "positives": {s: e["positives"] for s, e in splits.items()},
        "splits": {s: {"rows": e["rows"], "objects": e["objects"]} for s, e in splits.items()},
        "files": {s: e["files"] for s, e in splits.items()},
    }
    with named_errors("S3 PutObject (manifest)"):
        s3.put_object(
            Bucket=run.bucket,
            Key=manifest_key(run),
            Body=json.dumps(manifest, indent=2, sort_keys=True).encode(),
            ContentType="application/json",
        )
    return {
        "train_uri": run.s3_uri("data/train/"),
        "validation_uri": run.s3_uri("data/validation/"),
        "test_uri": run.s3_uri("data/test/"),
        "manifest_uri": run.s3_uri("data/manifest.json"),
        "counts": manifest["counts"],
        "splits": manifest["splits"],
        "source_sha256": manifest["source_sha256"],
    }
