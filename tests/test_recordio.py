"""recordIO-protobuf: byte-identical to the SageMaker SDK v2 and readable by it.

The SDK lives in its own venv (``.venv-sdk``, made by ``make setup``) because
it is far too big for the pipeline; these tests drive it through a subprocess.
"""

from __future__ import annotations

import io
import json
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pipeline_core import recordio

ROOT = Path(__file__).resolve().parent.parent
SDK_PYTHON = ROOT / ".venv-sdk" / "bin" / "python"


def _sdk(script: str, tmp_path: Path) -> str:
    if not SDK_PYTHON.exists():
        pytest.fail("the SDK reference venv is missing: run `make setup` (it creates .venv-sdk)")
    proc = subprocess.run(
        [str(SDK_PYTHON), "-c", textwrap.dedent(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"SAGEMAKER_SUPPRESS_V2_WARNING": "1", "PATH": "/usr/bin:/bin"},
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _arrays(rows: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    feats = rng.random((rows, dim), dtype=np.float32)
    feats[rng.random((rows, dim)) < 0.3] = 0.0
    feats[0, 0] = -0.0  # sign of zero must survive
    feats[1, :] = 1.0
    labels = (rng.random(rows) < 0.2).astype(np.float32)
    return feats, labels


@pytest.mark.parametrize(
    ("rows", "dim", "with_labels"),
    [(257, 784, True), (5, 1, True), (33, 17, False), (3, 130, True)],
)
def test_writer_is_byte_identical_to_sdk_write_numpy_to_dense_tensor(
    tmp_path: Path, rows: int, dim: int, with_labels: bool
) -> None:
    feats, labels = _arrays(rows, dim, seed=rows + dim)
    np.save(tmp_path / "x.npy", feats)
    np.save(tmp_path / "y.npy", labels)
    _sdk(
        f"""
        import numpy as np
        from sagemaker.amazon.common import write_numpy_to_dense_tensor
        x = np.load("x.npy"); y = np.load("y.npy")
        with open("sdk.rec", "wb") as f:
            write_numpy_to_dense_tensor(f, x, y if {with_labels} else None)
        """,
        tmp_path,
    )
    ours = io.BytesIO()
    recordio.write_dense(ours, feats, labels if with_labels else None)
    assert ours.getvalue() == (tmp_path / "sdk.rec").read_bytes()


def test_sdk_read_records_reads_our_output(tmp_path: Path) -> None:
    feats, labels = _arrays(40, 784, seed=7)
    (tmp_path / "ours.rec").write_bytes(recordio.encode_dense(feats, labels))
    out = _sdk(
        """
        import json
        from sagemaker.amazon.common import read_records
        recs = read_records(open("ours.rec", "rb"))
        print(json.dumps([[list(r.features["values"].float32_tensor.values),
                           list(r.label["values"].float32_tensor.values)] for r in recs]))
        """,
        tmp_path,
    )
    decoded = json.loads(out.strip().splitlines()[-1])
    assert len(decoded) == 40
    np.testing.assert_array_equal(np.array([d[0] for d in decoded], dtype=np.float32), feats)
    np.testing.assert_array_equal(np.array([d[1][0] for d in decoded], dtype=np.float32), labels)


def test_decoder_reads_sdk_sparse_records_through_the_generic_path(tmp_path: Path) -> None:
    dense = np.zeros((6, 20), dtype=np.float32)
    dense[0, 3] = 0.5
    dense[2, 19] = 1.0
    dense[5, [0, 7]] = [0.25, 0.75]
    labels = np.arange(6, dtype=np.float32) % 2
    np.save(tmp_path / "x.npy", dense)
    np.save(tmp_path / "y.npy", labels)
    _sdk(
        """
        import numpy as np, scipy.sparse as sp
        from sagemaker.amazon.common import write_spmatrix_to_sparse_tensor
        x = np.load("x.npy"); y = np.load("y.npy")
        with open("sparse.rec", "wb") as f:
            write_spmatrix_to_sparse_tensor(f, sp.csr_matrix(x), y)
        """,
        tmp_path,
    )
    feats, labs = recordio.decode((tmp_path / "sparse.rec").read_bytes(), feature_dim=20)
    np.testing.assert_array_equal(feats, dense)
    assert labs is not None
    np.testing.assert_array_equal(labs, labels)


def test_round_trip_takes_the_vectorised_path_and_preserves_bits() -> None:
    feats, labels = _arrays(1000, 784, seed=3)
    feats[2, 5] = np.float32(1e-45)  # subnormal
    data = recordio.encode_dense(feats, labels)
    got, got_labels = recordio.decode(data, feature_dim=784)
    assert got.tobytes() == feats.tobytes()
    assert got_labels is not None and got_labels.tobytes() == labels.tobytes()


def test_decode_rejects_bad_magic_truncation_and_wrong_feature_dim() -> None:
    feats, labels = _arrays(4, 10, seed=1)
    data = recordio.encode_dense(feats, labels)
    with pytest.raises(recordio.RecordIOError, match="magic"):
        recordio.decode(b"\x00" * 4 + data[4:])
    with pytest.raises(recordio.RecordIOError, match="truncated"):
        recordio.decode(data[:-7])
    with pytest.raises(recordio.RecordIOError, match="feature_dim"):
        recordio.decode(data, feature_dim=11)


def test_writer_rejects_non_float32_and_mismatched_labels() -> None:
    with pytest.raises(recordio.RecordIOError, match="float32"):
        recordio.encode_dense(np.zeros((2, 3), dtype=np.float64))
    with pytest.raises(recordio.RecordIOError, match="labels"):
        recordio.encode_dense(np.zeros((2, 3), dtype=np.float32), np.zeros(3, dtype=np.float32))
