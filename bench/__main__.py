"""``make bench``: run every measure, print a table, rewrite BENCHMARKS.md.

Every number written comes from this run. Times are compared as ratios with a
baseline measured in the same run, because absolute times on a shared 2-core
machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import Measure, load_tutorial_split

ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict[str, str]:
    import numpy as np

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "os": platform.platform(),
        "load average (start)": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
    }


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "USD":
        return f"${value:.4f}"
    if unit == "s" and value < 0.01:
        return f"{value * 1000:.2f} ms"
    if abs(value) >= 1000:
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}"


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "—"}[met]


def table(measures: list[Measure]) -> list[str]:
    rows = [
        "| measure | baseline | baseline value | ours | ratio (> 1: ours better) "
        "| goal | result | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in measures:
        ratio = m.ratio
        rows.append(
            f"| {m.name} | {m.baseline_name} | {_fmt(m.baseline, m.unit)} | "
            f"{_fmt(m.ours, m.unit)} | {'—' if ratio is None else f'{ratio:.2f}x'} | "
            f"{m.goal} | {_verdict(m.met)} | {m.note} |"
        )
    return rows


def write_markdown(
    path: Path,
    info: dict[str, str],
    measures: list[Measure],
    seconds: float,
    extra: list[str] | None = None,
) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`); every number below comes from that run.",
        "Each time is compared with a baseline measured in the same run, on the same machine.",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        f"- bench wall time: {seconds:.0f} s",
        "",
        "## Summary",
        "",
        *table(measures),
        "",
        *(extra or []),
        "## Details",
        "",
    ]
    for m in measures:
        lines += [
            f"### {m.name}",
            "",
            "```json",
            json.dumps(m.details, indent=2, default=str),
            "```",
            "",
        ]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--repeat", type=int, default=3, help="repeats for the timed fits")
    parser.add_argument("--spread", type=int, default=8, help="default runs for the quality spread")
    parser.add_argument("--seeds", type=int, default=40, help="tuner seeds for the tuning spread")
    parser.add_argument(
        "--worker-seeds", type=int, default=5, help="seeds for 1 vs 2 training workers"
    )
    args = parser.parse_args(argv)

    from bench import (
        endpoint,
        lambda_sizing,
        local_run,
        quality,
        recordio_write,
        scale_out,
        training_job,
    )
    from local.account.mnist_cache import ensure_mnist
    from local.account.synth import synthesize

    started = time.perf_counter()
    info = machine()
    dataset = ensure_mnist(progress=lambda m: print(f"dataset: {m}"))
    data = load_tutorial_split(dataset)
    measures: list[Measure] = []

    def step(title: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {title}", flush=True)

    step("1/6 recordIO write vs SDK v2")
    measures.append(recordio_write.run(data["train_x"], data["train_y"]))
    step("2/6 one training job vs scikit-learn")
    measures += training_job.run(data, repeat=args.repeat)
    step("3/6 whole local run")
    run_measure, run_report = local_run.whole_run()
    measures.append(run_measure)
    step("3b/6 quality over several execution names")
    measures.append(local_run.quality_spread(args.spread))
    step(f"3c/6 default tuning over {args.seeds} tuner seeds, and the linear-model ceiling")
    measures.append(quality.seed_spread(data, args.seeds))
    measures.append(quality.linear_ceiling(data))
    step("4/6 local endpoint")
    measures += endpoint.run(_endpoint_model(data), data["test_x"])
    step("5/6 Lambda sizing")
    template = synthesize().template
    memory = {
        str(r["Properties"]["Handler"]): int(r["Properties"].get("MemorySize", 128))
        for r in template["Resources"].values()
        if r.get("Type") == "AWS::Lambda::Function"
        and str(r.get("Properties", {}).get("Handler", "")).startswith("lambdas.")
    }
    measures.append(lambda_sizing.convert_step(dataset, memory["lambdas.convert.handler"]))
    measures.append(lambda_sizing.asset_size())
    step("6/6 cloud cost per execution")
    measures.append(local_run.cost(run_report, memory))
    step("7/7 scale-out: Map child by shard count, 1 vs 2 training workers")
    children = scale_out.shard_children(
        data["train_x"], _digits(dataset), memory_mb=memory["lambdas.convert_shard.handler"]
    )
    measures.append(children)
    training = scale_out.workers(data, seeds=args.worker_seeds)
    measures.append(training)
    from pipeline_core.config import DEFAULTS

    extra = scale_out.cloud_model(children, training, DEFAULTS.map_max_concurrency)
    seconds = time.perf_counter() - started
    write_markdown(args.out, info, measures, seconds, extra)
    print()
    for row in table(measures):
        print(row)
    print(f"\nwrote {args.out} ({seconds:.0f} s)")
    return 0


def _digits(dataset: Path) -> Any:
    """The train split's digit labels (the shards keep digits, not 0/1)."""
    import gzip
    import pickle

    with gzip.open(dataset, "rb") as fh:
        (_, digits), _, _ = pickle.load(fh)
    return digits


def _endpoint_model(data: dict[str, Any]) -> Path:
    """The model the endpoint bench serves: the tutorial's settings, this split."""
    import tempfile

    from bench.training_job import TUTORIAL_HP
    from training.hyperparameters import parse_hyperparameters
    from training.trainer import train

    result = train(
        data["train_x"],
        data["train_y"],
        parse_hyperparameters(TUTORIAL_HP),
        validation=(data["valid_x"], data["valid_y"]),
    )
    path = Path(tempfile.mkdtemp(prefix="bench-model-")) / "model.tar.gz"
    result.model.save(path)
    return path


if __name__ == "__main__":
    sys.exit(main())
