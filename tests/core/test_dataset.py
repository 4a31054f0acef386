from __future__ import annotations

import builtins
import gzip
import io
import os
import pickle
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pipeline_testlib import make_dataset, make_split, pickle_gz

from pipeline_core.dataset import load_mnist, relabel, unpickle_gzip
from pipeline_core.errors import InvalidDatasetError


def _load(obj: Any, **kwargs: Any) -> Any:
    return load_mnist(pickle_gz(obj), **kwargs)


# -- what must load ------------------------------------------------


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_loads_real_numpy_array_pickles_at_every_protocol(protocol: int) -> None:
    ds = make_dataset()
    splits = load_mnist(pickle_gz(ds, protocol))
    for (images, labels), (_, split) in zip(ds, splits.items(), strict=True):
        assert split.images.dtype == np.float32
        np.testing.assert_array_equal(split.images, images)
        np.testing.assert_array_equal(split.labels, labels)


def test_loads_lists_instead_of_tuples() -> None:
    ds = [list(pair) for pair in make_dataset()]
    assert load_mnist(pickle_gz(ds)).test.images.shape == (20, 784)


def test_accepts_float64_images_and_whole_float_labels() -> None:
    (images, labels), *rest = make_dataset()
    ds = ((images.astype(np.float64), labels.astype(np.float64)), *rest)
    split = load_mnist(pickle_gz(ds)).train
    assert split.images.dtype == np.float32 and split.labels.dtype == np.int64
    np.testing.assert_array_equal(split.labels, labels)


def _py2_array(arr: np.ndarray) -> bytes:
    """An ndarray as Python 2's cPickle (protocol 2) wrote it: raw data as a
    py2 ``str`` (BINSTRING), which Python 3 reads only with encoding='latin1'."""
    descr = {np.dtype("<f4"): b"f4", np.dtype("<i8"): b"i8"}[arr.dtype]
    out = bytearray(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n")
    out += b"K\x00\x85U\x01b\x87R("  # _reconstruct(ndarray, (0,), 'b'), then MARK
    out += b"K\x01"  # state version
    for dim in arr.shape:
        out += b"J" + struct.pack("<i", dim)
    out += {1: b"\x85", 2: b"\x86"}[arr.ndim]
    out += b"cnumpy\ndtype\nU" + bytes([len(descr)]) + descr + b"K\x00K\x01\x87R"
    out += b"(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    out += b"\x89"  # not Fortran order
    data = arr.tobytes()
    out += b"T" + struct.pack("<i", len(data)) + data
    out += b"tb"  # state tuple, BUILD
    return bytes(out)


def _py2_pickle(ds: Any) -> bytes:
    body = bytearray(b"\x80\x02")
    for images, labels in ds:
        body += _py2_array(images) + _py2_array(labels) + b"\x86"
    body += b"\x87."
    return gzip.compress(bytes(body))


def test_loads_python2_latin1_pickle_like_the_tutorial_file() -> None:
    ds = make_dataset()
    raw = _py2_pickle(ds)
    with pytest.raises(UnicodeDecodeError):  # proves it is a genuine py2-style pickle
        pickle.loads(gzip.decompress(raw))
    splits = load_mnist(raw)
    np.testing.assert_array_equal(splits.validation.images, ds[1][0])
    np.testing.assert_array_equal(splits.test.labels, ds[2][1])


# -- code execution attempts ------------------------------------------------


class _Payload:
    def __init__(self, fn: Any, args: tuple[Any, ...]) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.fn, self.args


def _payloads(marker: Path) -> list[tuple[str, Any]]:
    return [
        ("os.system", _Payload(os.system, (f"touch {marker}",))),
        ("builtins.open", _Payload(builtins.open, (str(marker), "w"))),
        ("subprocess.call", _Payload(subprocess.call, (["touch", str(marker)],))),
        ("builtins.eval", _Payload(builtins.eval, (f"open({str(marker)!r}, 'w')",))),
        ("numpy.save", _Payload(np.save, (str(marker), np.zeros(1)))),
    ]


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("which", range(5))
def test_convert_rejects_pickle_with_code_execution_payload(
    tmp_path: Path, protocol: int, which: int
) -> None:
    marker = tmp_path / "pwned"
    label, payload = _payloads(marker)[which]
    # Hidden after genuine arrays, so the loader is already deep in the stream.
    ds = make_dataset()
    hostile = (ds[0], ds[1], (ds[2][0], ds[2][1], payload))
    with pytest.raises(InvalidDatasetError, match="not allowed"):
        load_mnist(pickle_gz(hostile, protocol))
    assert not marker.exists(), label
    assert not (tmp_path / "pwned.npy").exists()


def test_rejects_object_arrays_in_the_pickle() -> None:
    images, labels = make_split(10, 0)
    ds = ((images.astype(object), labels), make_split(5, 1), make_split(5, 2))
    with pytest.raises(InvalidDatasetError):
        _load(ds)


def test_rejects_calling_ndarray_directly_to_allocate_memory() -> None:
    evil = b"\x80\x02cnumpy\nndarray\nJ\x00\x00\x00\x7f\x85\x85R."
    with pytest.raises(InvalidDatasetError):
        unpickle_gzip(gzip.compress(evil))


def test_rejects_persistent_ids() -> None:
    with pytest.raises(InvalidDatasetError, match="persistent"):
        unpickle_gzip(gzip.compress(b"\x80\x02U\x03abcQ."))


# -- the container ------------------------------------------------


def test_rejects_data_that_is_not_gzip() -> None:
    with pytest.raises(InvalidDatasetError, match="not gzip"):
        load_mnist(pickle.dumps(make_dataset()))


@pytest.mark.parametrize("keep", [0.5, 0.99], ids=["half", "missing-trailer"])
def test_rejects_truncated_gzip(keep: float) -> None:
    raw = pickle_gz(make_dataset())
    with pytest.raises(InvalidDatasetError, match=r"truncated|corrupt"):
        load_mnist(raw[: int(len(raw) * keep)])


@pytest.mark.parametrize("size", [2, 10], ids=["magic-only", "header-only"])
def test_rejects_gzip_cut_inside_the_header(size: int) -> None:
    raw = pickle_gz(make_dataset())
    with pytest.raises(InvalidDatasetError):
        load_mnist(raw[:size])


@pytest.mark.parametrize(
    "data",
    [b"", b"\x1f", b"PK\x03\x04zip", b"BZh91AY&SY", b"\x80\x04\x95pickle"],
    ids=["empty", "one-byte", "zip", "bzip2", "raw-pickle"],
)
def test_rejects_other_containers_as_not_gzip(data: bytes) -> None:
    with pytest.raises(InvalidDatasetError, match="not gzip"):
        load_mnist(data)


def test_rejects_a_plain_pickle_of_a_builtin_callable_at_the_top_level(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = _Payload(os.system, (f"touch {marker}",))
    with pytest.raises(InvalidDatasetError, match=r"posix.system|os.system|nt.system"):
        load_mnist(pickle_gz(payload))
    assert not marker.exists()


def test_rejects_gzip_with_corrupt_crc() -> None:
    raw = bytearray(pickle_gz(make_dataset()))
    raw[-8] ^= 0xFF  # CRC32 of the trailer
    with pytest.raises(InvalidDatasetError, match="corrupt"):
        load_mnist(bytes(raw))


def test_rejects_gzip_that_is_not_a_pickle() -> None:
    with pytest.raises(InvalidDatasetError, match="not a valid pickle"):
        load_mnist(gzip.compress(b"just some text, not a pickle"))


def test_rejects_empty_gzip() -> None:
    with pytest.raises(InvalidDatasetError, match="not a valid pickle"):
        load_mnist(gzip.compress(b""))


def test_rejects_decompressed_size_beyond_the_cap() -> None:
    with pytest.raises(InvalidDatasetError, match="more than"):
        load_mnist(pickle_gz(make_dataset()), max_bytes=10_000)


def test_rejects_gzip_bomb_without_inflating_it_all() -> None:
    bomb = gzip.compress(b"\x00" * (64 << 20))  # 64 MB of zeros, ~64 KB compressed
    with pytest.raises(InvalidDatasetError):
        load_mnist(bomb, max_bytes=1 << 20)


# -- structure, shapes, values ----------------------------------------------------------


def _with_split(index: int, split: Any) -> tuple[Any, ...]:
    ds = list(make_dataset())
    ds[index] = split
    return tuple(ds)


def _train(images: Any = None, labels: Any = None) -> tuple[Any, ...]:
    base_images, base_labels = make_split(20, 9)
    return _with_split(
        0,
        (base_images if images is None else images, base_labels if labels is None else labels),
    )


BAD: list[tuple[str, Any, str]] = [
    ("two splits", make_dataset()[:2], "triple"),
    ("four splits", (*make_dataset(), make_split(3, 3)), "triple"),
    ("a dict", {"train": make_split(3, 3)}, "triple"),
    ("split is a triple", _with_split(1, (*make_split(3, 3), None)), "'validation' must be"),
    ("split is an array", _with_split(2, make_split(3, 3)[0]), "'test' must be"),
    ("images are a list", _train(images=[[0.0] * 784] * 20), "numpy array"),
    ("labels are a list", _train(labels=[0] * 20), "numpy array"),
    ("images wrong width", _train(images=np.zeros((20, 783), np.float32)), r"\(N, 784\)"),
    ("images one-dimensional", _train(images=np.zeros(784, np.float32)), r"\(N, 784\)"),
    ("images three-dimensional", _train(images=np.zeros((20, 28, 28), np.float32)), r"\(N, 784\)"),
    ("labels too short", _train(labels=np.zeros(19, np.int64)), "labels must have shape"),
    (
        "labels two-dimensional",
        _train(labels=np.zeros((20, 1), np.int64)),
        "labels must have shape",
    ),
    ("images string dtype", _train(images=np.full((20, 784), "a")), "numeric"),
    ("images bool dtype", _train(images=np.zeros((20, 784), bool)), "numeric"),
    ("images complex dtype", _train(images=np.zeros((20, 784), np.complex64)), "numeric"),
    ("labels string dtype", _train(labels=np.full(20, "0")), "integers"),
    ("labels fractional", _train(labels=np.full(20, 0.5)), "whole numbers"),
    ("labels nan", _train(labels=np.full(20, np.nan)), "whole numbers"),
    ("labels too big", _train(labels=np.full(20, 10)), "0-9"),
    ("labels negative", _train(labels=np.full(20, -1)), "0-9"),
    ("images nan", _train(images=np.full((20, 784), np.nan, np.float32)), "NaN"),
    ("images inf", _train(images=np.full((20, 784), np.inf, np.float32)), "NaN or infinite"),
    ("images above one", _train(images=np.full((20, 784), 1.5, np.float32)), r"\[0, 1\]"),
    ("images negative", _train(images=np.full((20, 784), -0.1, np.float32)), r"\[0, 1\]"),
    ("raw uint8 pixels", _train(images=np.full((20, 784), 255, np.uint8)), r"\[0, 1\]"),
    (
        "empty train",
        _train(images=np.zeros((0, 784), np.float32), labels=np.zeros(0, np.int64)),
        "'train' is empty",
    ),
    (
        "empty test",
        _with_split(2, (np.zeros((0, 784), np.float32), np.zeros(0, np.int64))),
        "'test' is empty",
    ),
    ("target absent", _train(labels=np.full(20, 3)), "no example of target digit 0"),
    ("none", None, "triple"),
    ("a string", "train,valid,test", "triple"),
    ("splits are numbers", (1, 2, 3), "'train' must be"),
    ("split is a dict", _with_split(0, {"images": 1, "labels": 2}), "'train' must be"),
    ("images wrong width 785", _train(images=np.zeros((20, 785), np.float32)), r"\(N, 784\)"),
    (
        "images datetime dtype",
        _train(images=np.zeros((20, 784), "datetime64[s]")),
        "numeric",
    ),
    (
        "images structured dtype",
        _train(images=np.zeros((20, 784), [("a", "f4")])),
        "numeric",
    ),
    ("labels bool", _train(labels=np.zeros(20, bool)), "integers"),
    ("labels complex", _train(labels=np.zeros(20, np.complex64)), "integers"),
    ("labels inf", _train(labels=np.full(20, np.inf)), "whole numbers"),
    ("labels huge", _train(labels=np.full(20, 2**40, np.int64)), "0-9"),
    (
        "images negative inf",
        _train(images=np.full((20, 784), -np.inf, np.float32)),
        "NaN or infinite",
    ),
    (
        "empty validation",
        _with_split(1, (np.zeros((0, 784), np.float32), np.zeros(0, np.int64))),
        "'validation' is empty",
    ),
]


@pytest.mark.parametrize(("obj", "message"), [(b[1], b[2]) for b in BAD], ids=[b[0] for b in BAD])
def test_rejects_malformed_dataset_with_a_precise_message(obj: Any, message: str) -> None:
    with pytest.raises(InvalidDatasetError, match=message):
        _load(obj)


def test_one_nan_pixel_anywhere_is_rejected() -> None:
    images, labels = make_split(30, 5)
    images[17, 400] = np.nan
    with pytest.raises(InvalidDatasetError, match=r"'validation'.*NaN"):
        _load(_with_split(1, (images, labels)))


def test_target_digit_must_be_present_in_train_for_the_chosen_digit() -> None:
    images, _ = make_split(20, 9)
    ds = _with_split(0, (images, np.full(20, 3, np.int64)))
    assert load_mnist(pickle_gz(ds), target_digit=3).train.labels[0] == 3


def test_feature_dim_comes_from_the_caller() -> None:
    ds = make_dataset(dim=16)
    assert load_mnist(pickle_gz(ds), feature_dim=16).train.images.shape[1] == 16
    with pytest.raises(InvalidDatasetError, match=r"\(N, 784\)"):
        load_mnist(pickle_gz(ds))


def test_relabel_marks_the_target_digit_as_one() -> None:
    out = relabel(np.array([0, 1, 2, 0, 9]), 0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [1, 0, 0, 1, 0])
    np.testing.assert_array_equal(relabel(np.array([7, 1, 7]), 7), [1, 0, 1])


# -- dtype state rewritten by the pickle ---------------------------------------------


class _RewritingPickler(pickle.Pickler):
    """Pickles dtypes of ``kind`` with their ``__setstate__`` state rewritten."""

    def __init__(self, f: Any, protocol: int, kind: str, rewrite: Any) -> None:
        super().__init__(f, protocol)
        self.kind, self.rewrite = kind, rewrite

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, np.dtype) and obj.kind == self.kind:
            fn, args, state = obj.__reduce__()
            return fn, args, self.rewrite(tuple(state))
        return NotImplemented


def _rewritten(kind: str, rewrite: Any, protocol: int) -> bytes:
    buf = io.BytesIO()
    _RewritingPickler(buf, protocol, kind, rewrite).dump(make_dataset())
    return gzip.compress(buf.getvalue())


def _with_flags(flags: int) -> Any:
    return lambda state: (*state[:-1], flags)


@pytest.mark.parametrize("protocol", [0, 2, 5])
@pytest.mark.parametrize("kind", ["f", "i"], ids=["float32-images", "int64-labels"])
@pytest.mark.parametrize("bit", range(8))
def test_rejects_every_dtype_flag_bit_the_pickle_sets(protocol: int, kind: str, bit: int) -> None:
    """Bit 0 claims the float32/int64 array holds Python objects (numpy then fails
    inside with "get_clear_loop not set"); each other bit is refused alike."""
    data = _rewritten(kind, _with_flags(1 << bit), protocol)
    with pytest.raises(InvalidDatasetError, match=f"rewrites the flags of dtype .* to {1 << bit}"):
        load_mnist(data)


@pytest.mark.parametrize(
    ("rewrite", "message"),
    [
        (lambda st: (st[0], st[1], None, ("a",), None, -1, -1, 0), "rewrites the state"),
        (lambda st: (st[0], st[1], None, None, None, 2, -1, 0), "rewrites the state"),
        (lambda st: (st[0], st[1], None, None, None, -1, 16, 0), "rewrites the state"),
        (lambda st: (st[0], "|", None, None, None, -1, -1, 0), "byte order"),
        (lambda st: (st[0], "?", None, None, None, -1, -1, 0), "byte order"),
        (lambda st: (*st, "extra"), "malformed state"),
        (lambda st: [*st], "malformed state"),
        (lambda st: (st[0], st[1], None, None, None, -1, -1, 255), "flags"),
    ],
)
def test_rejects_any_other_rewritten_dtype_state(rewrite: Any, message: str) -> None:
    with pytest.raises(InvalidDatasetError, match=message):
        load_mnist(_rewritten("f", rewrite, 2))


def test_a_big_endian_pickle_is_rebuilt_as_big_endian_and_loads() -> None:
    ds = make_dataset()
    swapped = tuple((x.astype(">f4"), y.astype(">i8")) for x, y in ds)
    splits = load_mnist(pickle_gz(swapped, 2))
    np.testing.assert_array_equal(splits.train.images, ds[0][0])
    np.testing.assert_array_equal(splits.train.labels, ds[0][1])


@pytest.mark.parametrize("protocol", [2, 5])
def test_loaded_arrays_have_dtypes_numpy_built_itself(protocol: int) -> None:
    splits = load_mnist(pickle_gz(make_dataset(), protocol))
    for _, split in splits.items():
        for arr in (split.images, split.labels):
            assert arr.dtype.flags == np.dtype(arr.dtype.str).flags == 0
            assert not arr.dtype.hasobject


def test_rejects_array_data_of_the_wrong_size() -> None:
    images, labels = make_split(4, 0)
    state = images.__reduce__()[2]
    short = (state[0], state[1], state[2], state[3], state[4][:-4])

    class Short:
        def __reduce__(self) -> Any:
            from numpy._core.multiarray import _reconstruct

            return _reconstruct, (np.ndarray, (0,), b"b"), short

    with pytest.raises(InvalidDatasetError, match="inconsistent array data"):
        load_mnist(pickle_gz(((Short(), labels), make_split(5, 1), make_split(5, 2)), 2))
