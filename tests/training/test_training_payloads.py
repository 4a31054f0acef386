"""CSV parsing: the fast path must give exactly ``float32(float(token))``.

Randomised (seeded) property tests: random float32 rows in many shapes and
formats, each value checked bit for bit against Python's ``float()``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import pytest

from pipeline_core.evaluate import format_csv
from training.errors import PayloadError
from training.payloads import _parse_csv_fast, parse_csv, parse_features

FORMATS: dict[str, Callable[[float], str]] = {
    "repr": repr,
    "repr32": lambda v: str(np.float32(v)),  # shortest round trip for float32
    "%.9g": lambda v: f"{v:.9g}",
    "%.17g": lambda v: f"{v:.17g}",
    "%g": lambda v: f"{v:g}",
    "%.3f": lambda v: f"{v:.3f}",
    "%d": lambda v: f"{int(v):d}",
}


def reference(tokens: list[list[str]]) -> np.ndarray:
    return np.array([[np.float32(float(t)) for t in row] for row in tokens], dtype=np.float32)


def body_of(tokens: list[list[str]], line_end: str = "\n") -> bytes:
    return line_end.join(",".join(row) for row in tokens).encode()


def assert_same_bits(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.float32 and got.shape == want.shape
    bad = np.flatnonzero(got.view(np.uint32) != want.view(np.uint32))
    assert bad.size == 0, (
        f"first mismatch at {bad[0]}: {got.ravel()[bad[0]]!r} != {want.ravel()[bad[0]]!r}"
    )


def random_values(rng: np.random.Generator, shape: tuple[int, int], kind: str) -> np.ndarray:
    if kind == "mnist":  # mostly 0, the rest k/255
        x = rng.integers(0, 256, size=shape).astype(np.float32) / np.float32(255)
        x[rng.random(shape) < 0.8] = 0
        return x
    if kind == "uniform":
        return rng.random(shape, dtype=np.float32)
    if kind == "wide":  # signs and magnitudes from 1e-30 to 1e30
        mag = 10.0 ** rng.uniform(-30, 30, size=shape)
        return (rng.choice([-1.0, 1.0], size=shape) * mag).astype(np.float32)
    if kind == "ints":
        return rng.integers(-(10**6), 10**6, size=shape).astype(np.float32)
    if kind == "bits":  # any finite float32 bit pattern
        raw = rng.integers(0, 2**32, size=shape, dtype=np.uint64).astype(np.uint32).view(np.float32)
        return np.where(np.isfinite(raw), raw, np.float32(1.5))
    raise AssertionError(kind)


KINDS = ["mnist", "uniform", "wide", "ints", "bits"]


# %d can only print integral values, so it pairs with the integral kinds only.
COMBOS = [
    (kind, fmt)
    for kind in KINDS
    for fmt in sorted(FORMATS)
    if fmt != "%d" or kind in ("ints", "mnist")
]


@pytest.mark.parametrize(("kind", "fmt"), COMBOS)
def test_parse_csv_equals_float_for_random_rows(kind, fmt):
    rng = np.random.default_rng(zlib.crc32(f"{kind}/{fmt}".encode()))
    for _ in range(4):
        rows, dim = int(rng.integers(1, 40)), int(rng.integers(1, 60))
        x = random_values(rng, (rows, dim), kind)
        tokens = [[FORMATS[fmt](float(v)) for v in row] for row in x.tolist()]
        want = reference(tokens)
        body = body_of(tokens)
        assert_same_bits(parse_csv(body, dim), want)
        fast = _parse_csv_fast(body, dim)
        if fast is not None:
            assert_same_bits(fast, want)


@pytest.mark.parametrize("kind", KINDS)
def test_fast_path_handles_plain_decimals_itself(kind):
    """%.9g and float32 repr of ordinary values need no fallback."""
    rng = np.random.default_rng(7)
    x = random_values(rng, (30, 50), kind)
    if kind in ("wide", "bits"):
        x = np.clip(np.abs(x), 1e-3, 9e5).astype(np.float32) * rng.choice([-1, 1], x.shape)
    for fmt in ("repr32", "%.9g"):
        tokens = [[FORMATS[fmt](float(v)) for v in row] for row in x.tolist()]
        fast = _parse_csv_fast(body_of(tokens), 50)
        assert fast is not None
        assert_same_bits(fast, reference(tokens))


def test_format_csv_bodies_round_trip_exactly():
    rng = np.random.default_rng(3)
    for kind in KINDS:
        x = random_values(rng, (100, 784), kind)
        body = format_csv(x)
        assert len(body) >= 32 * 1024  # the fast path's size
        assert_same_bits(parse_csv(body, 784), x)


def test_mnist_like_batch_parses_on_the_fast_path_exactly():
    # MNIST pixels are k/255 for k in 0..255, mostly 0: the evaluation's bodies.
    rng = np.random.default_rng(7)
    k = np.where(rng.random((100, 784)) < 0.8, 0, rng.integers(1, 256, (100, 784)))
    x = (k.astype(np.float32) / np.float32(255.0)).astype(np.float32)
    body = format_csv(x)
    fast = _parse_csv_fast(body, 784)
    assert fast is not None
    assert_same_bits(fast, x)
    assert_same_bits(parse_csv(body, 784), x)


@pytest.mark.parametrize(
    "token",
    [
        "0", "00", "-0", "+0", "0.0", ".5", "5.", "-.5", "+5.", "007", "1", "9",
        "0.1", "0.30000000000000004", "123456789012345.6", "1234567890123456",
        "9007199254740993", "12345678901234567", "0.000000000000001",
        "999999999999999.9", "1e5", "1E-5", "-1.5e+3", "4.9e-324", "3.4028235e38",
        "1e-50", "16777217", "0.99215686321258545", "-0.0000000001",
        "1.00000000000000000000001",
    ],
)  # fmt: skip
def test_single_tokens_in_every_position(token):
    want = np.float32(float(token))
    for dim in (1, 3, 17):
        for where in range(dim):
            row = ["0"] * dim
            row[where] = token
            tokens = [row, ["1"] * dim, row]
            body = body_of(tokens)
            got = parse_csv(body, dim)
            assert_same_bits(got, reference(tokens))
            fast = _parse_csv_fast(body, dim)
            if fast is not None:
                assert_same_bits(fast, reference(tokens))
            assert got[0, where] == want or (np.isnan(want) and np.isnan(got[0, where]))


def test_line_ends_whitespace_and_trailing_newline():
    x = random_values(np.random.default_rng(5), (200, 40), "wide")
    tokens = [[repr(float(v)) for v in row] for row in x.tolist()]
    want = reference(tokens)
    for body in (
        body_of(tokens, "\r\n") + b"\r\n",
        body_of(tokens) + b"\n\n",
        b"\n" + body_of(tokens) + b" \n",
        body_of(tokens).replace(b",", b", "),
        body_of(tokens, "\r"),
    ):
        assert_same_bits(parse_csv(body, 40), want)


def test_many_exponents_fall_back_to_loadtxt_and_stay_exact():
    x = random_values(np.random.default_rng(6), (60, 100), "wide")
    tokens = [[f"{v:.8e}" for v in row] for row in x.tolist()]
    body = body_of(tokens)
    assert _parse_csv_fast(body, 100) is None  # > 256 values need float()
    assert_same_bits(parse_csv(body, 100), reference(tokens))


def with_token(rows: list[list[str]], token: str) -> list[list[str]]:
    """``rows`` with its 8th value of the first row replaced by ``token``."""
    return [[*rows[0][:7], token, *rows[0][8:]], *rows[1:]]


@pytest.mark.parametrize(
    ("mutate", "status", "message"),
    [
        (lambda rows: [*rows[:-1], rows[-1][:-1]], 400, "number of columns"),
        (lambda rows: [r[:-1] for r in rows], 400, "feature_dim=50"),
        (lambda rows: [[*r, "1"] for r in rows], 400, "feature_dim=50"),
        (lambda rows: with_token(rows, "abc"), 400, "malformed CSV"),
        (lambda rows: with_token(rows, "1.2.3"), 400, "malformed CSV"),
        (lambda rows: with_token(rows, "-"), 400, "malformed CSV"),
        (lambda rows: with_token(rows, ""), 400, "malformed CSV"),
        (lambda rows: with_token(rows, "nan"), 400, "finite"),
        (lambda rows: with_token(rows, "-inf"), 400, "finite"),
        (lambda rows: with_token(rows, "1e999"), 400, "finite"),
    ],
)
def test_bad_large_bodies_get_readable_errors(mutate, status, message):
    x = random_values(np.random.default_rng(8), (300, 50), "mnist")
    rows = [[f"{v:.9g}" for v in row] for row in x.tolist()]
    body = body_of(mutate(rows))
    assert len(body) >= 32 * 1024
    with pytest.raises(PayloadError) as info:
        parse_features(body, "text/csv", 50)
    assert info.value.status == status
    assert message in str(info.value)


def test_garbage_bytes_are_a_400_not_a_crash():
    rng = np.random.default_rng(9)
    for _ in range(20):
        body = rng.integers(0, 256, size=40_000, dtype=np.uint8).tobytes()
        with pytest.raises(PayloadError) as info:
            parse_features(body, "text/csv", 784)
        assert info.value.status == 400
    # digits and separators only, but the wrong shape
    body = rng.choice(np.frombuffer(b"0123456789,\n.", dtype=np.uint8), 40_000).tobytes()
    with pytest.raises(PayloadError):
        parse_features(body, "text/csv", 784)


def test_scratch_buffers_do_not_leak_between_bodies():
    """A large body, then a smaller one: stale bytes past the end must not count."""
    big = format_csv(random_values(np.random.default_rng(10), (100, 784), "mnist"))
    small_x = random_values(np.random.default_rng(11), (30, 784), "uniform")
    assert _parse_csv_fast(big, 784) is not None
    assert_same_bits(parse_csv(format_csv(small_x), 784), small_x)
    assert_same_bits(parse_csv(big, 784), parse_csv(big, 784))
