"""Measure 5: Lambda sizing.

- Peak memory and time of the convert step on the full dataset, in a fresh
  process (as a Lambda would run it), against the memory the stack gives it.
- The Lambda asset's size, zipped and unzipped, against Lambda's 250 MB limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path
from typing import Any

from bench.common import Measure

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_UNZIPPED_LIMIT_MB = 250.0

_CONVERT = textwrap.dedent(
    """
    import io, json, sys, time
    from botocore.exceptions import ClientError
    from pipeline_core.config import PipelineConfig
    from pipeline_core.convert import convert_dataset
    from pipeline_core.inputs import resolve_run

    def _drain(fh):
        total = 0
        while chunk := fh.read(1 << 20):
            total += len(chunk)
        return total

    def vm_hwm_mb():
        # This process's own peak (ru_maxrss would include the parent's
        # high-water mark, which survives exec).
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc/self/status")

    class DiscardingS3:
        # Reads nothing back and keeps nothing: only the convert step is measured.
        def __init__(self): self.written = 0
        def get_object(self, Bucket, Key):
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "none"}}, "GetObject")
        def head_object(self, Bucket, Key):
            raise ClientError({"Error": {"Code": "404", "Message": "none"}}, "HeadObject")
        def put_object(self, Bucket, Key, Body, **kw):
            # Count without copying: the upload streams from the buffer.
            self.written += len(Body) if hasattr(Body, "__len__") else _drain(Body)
            return {}
        def upload_fileobj(self, Fileobj, Bucket, Key, **kw):
            self.written += _drain(Fileobj)
        def delete_object(self, Bucket, Key): return {}

    config = PipelineConfig()
    run = resolve_run({"source": sys.argv[1]}, execution_name="bench-convert", config=config,
                      bucket="bench", region="us-east-1", default_endpoint_name="mnist-ll-endpoint",
                      stack_tag="bench", allow_local_sources=True)
    before = vm_hwm_mb()
    s3 = DiscardingS3()
    start = time.perf_counter()
    convert_dataset(run, config, s3)
    seconds = time.perf_counter() - start
    peak = vm_hwm_mb()
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "before_mb": before,
                      "written_mb": s3.written / 1e6}))
    """
)


def convert_step(source: Path, memory_mb: int) -> Measure:
    proc = subprocess.run(
        [sys.executable, "-c", _CONVERT, str(source)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    return Measure(
        name="convert step on the full dataset (peak RSS of a fresh process)",
        metric="peak memory",
        baseline_name="the Convert Lambda's configured memory",
        baseline=float(memory_mb),
        ours=float(stats["peak_mb"]),
        unit="MB",
        goal="peak <= 2 GB and within the Lambda's memory",
        met=bool(stats["peak_mb"] <= min(2048, memory_mb)),
        details={
            "seconds": round(stats["seconds"], 3),
            "rss_before_convert_mb": round(stats["before_mb"], 1),
            "recordio_written_mb": round(stats["written_mb"], 1),
        },
        note=f"{stats['seconds']:.2f} s, {stats['written_mb']:.0f} MB of recordIO written",
    )


def asset_size() -> Measure:
    from stacks import bundling

    version = "3.14"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "asset"
        out.mkdir()
        bundling.bundle(ROOT, out, version, ROOT / ".build" / "lambda-deps")
        unzipped = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        zipped_path = Path(tmp) / "asset.zip"
        with zipfile.ZipFile(zipped_path, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(out.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(out))
        zipped = zipped_path.stat().st_size
    unzipped_mb = unzipped / 1e6
    return Measure(
        name="Lambda asset (shared by all functions)",
        metric="unzipped size",
        baseline_name="Lambda's unzipped deployment limit",
        baseline=LAMBDA_UNZIPPED_LIMIT_MB,
        ours=unzipped_mb,
        unit="MB",
        goal="< 250 MB unzipped",
        met=bool(unzipped_mb < LAMBDA_UNZIPPED_LIMIT_MB),
        details={"zipped_mb": round(zipped / 1e6, 1), "unzipped_mb": round(unzipped_mb, 1)},
        note=f"{zipped / 1e6:.1f} MB zipped",
    )


def convert_memory_from_template(template: dict[str, Any]) -> int:
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Lambda::Function" and props.get("Handler") == (
            "lambdas.convert.handler"
        ):
            return int(props.get("MemorySize", 128))
    raise LookupError("no convert function in the template")
