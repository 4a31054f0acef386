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


def _arrays(rows: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    feats = rng.random((rows, dim), dtype=np.float32)
    feats[rng.random((rows, dim)) < 0.3] = 0.0
    feats[0, 0] = -0.0  # sign of zero must survive
    feats[1, :] = 1.0
    labels = (rng.random(rows) < 0.2).astype(np.float32)
    return feats, labels


DENSE_CASES = [(257, 784, True), (5, 1, True), (33, 17, False), (3, 130, True)]


def _sparse_case() -> tuple[np.ndarray, np.ndarray]:
    dense = np.zeros((6, 20), dtype=np.float32)
    dense[0, 3] = 0.5
    dense[2, 19] = 1.0
    dense[5, [0, 7]] = [0.25, 0.75]
    return dense, np.arange(6, dtype=np.float32) % 2


# One SDK process does every case: importing the SDK alone takes seconds.
SDK_SCRIPT = """
import json
import numpy as np, scipy.sparse as sp
from sagemaker.amazon.common import (
    read_records, write_numpy_to_dense_tensor, write_spmatrix_to_sparse_tensor)
for case in json.load(open("dense_cases.json")):
    x = np.load(f"x-{case['id']}.npy"); y = np.load(f"y-{case['id']}.npy")
    with open(f"sdk-{case['id']}.rec", "wb") as f:
        write_numpy_to_dense_tensor(f, x, y if case["with_labels"] else None)
recs = read_records(open("ours.rec", "rb"))
json.dump([[list(r.features["values"].float32_tensor.values),
            list(r.label["values"].float32_tensor.values)] for r in recs],
          open("ours-read.json", "w"))
x = np.load("sparse-x.npy"); y = np.load("sparse-y.npy")
with open("sparse.rec", "wb") as f:
    write_spmatrix_to_sparse_tensor(f, sp.csr_matrix(x), y)
"""


@pytest.fixture(scope="module")
def sdk_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SDK's outputs for every case below, written by one SDK process."""
    if not SDK_PYTHON.exists():
        pytest.fail("the SDK reference venv is missing: run `make setup` (it creates .venv-sdk)")
    work = tmp_path_factory.mktemp("sdk-recordio")
    cases = []
    for rows, dim, with_labels in DENSE_CASES:
        case_id = f"{rows}-{dim}-{with_labels}"
        feats, labels = _arrays(rows, dim, seed=rows + dim)
        np.save(work / f"x-{case_id}.npy", feats)
        np.save(work / f"y-{case_id}.npy", labels)
        cases.append({"id": case_id, "with_labels": with_labels})
    (work / "dense_cases.json").write_text(json.dumps(cases))
    feats, labels = _arrays(40, 784, seed=7)
    (work / "ours.rec").write_bytes(recordio.encode_dense(feats, labels))
    dense, sparse_labels = _sparse_case()
    np.save(work / "sparse-x.npy", dense)
    np.save(work / "sparse-y.npy", sparse_labels)
    proc = subprocess.run(
        [str(SDK_PYTHON), "-c", textwrap.dedent(SDK_SCRIPT)],
        cwd=work,
        capture_output=True,
        text=True,
        env={"SAGEMAKER_SUPPRESS_V2_WARNING": "1", "PATH": "/usr/bin:/bin"},
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work


@pytest.mark.parametrize(("rows", "dim", "with_labels"), DENSE_CASES)
def test_writer_is_byte_identical_to_sdk_write_numpy_to_dense_tensor(
    sdk_dir: Path, rows: int, dim: int, with_labels: bool
) -> None:
    feats, labels = _arrays(rows, dim, seed=rows + dim)
    ours = io.BytesIO()
    recordio.write_dense(ours, feats, labels if with_labels else None)
    assert ours.getvalue() == (sdk_dir / f"sdk-{rows}-{dim}-{with_labels}.rec").read_bytes()


def test_sdk_read_records_reads_our_output(sdk_dir: Path) -> None:
    feats, labels = _arrays(40, 784, seed=7)
    decoded = json.loads((sdk_dir / "ours-read.json").read_text())
    assert len(decoded) == 40
    np.testing.assert_array_equal(np.array([d[0] for d in decoded], dtype=np.float32), feats)
    np.testing.assert_array_equal(np.array([d[1][0] for d in decoded], dtype=np.float32), labels)


def test_decoder_reads_sdk_sparse_records_through_the_generic_path(sdk_dir: Path) -> None:
    dense, labels = _sparse_case()
    feats, labs = recordio.decode((sdk_dir / "sparse.rec").read_bytes(), feature_dim=20)
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
