"""``make bench``: run every measure, print a table, rewrite BENCHMARKS.md.

Every number written comes from this run. Times are compared as ratios with a
baseline measured in the same run, because absolute times on a shared 2-core
machine are noisy. Each measure waits for a quiet machine first and records the
1-minute load around it (:mod:`bench.load`); a row taken on a busy machine gets
no verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import Measure, load_tutorial_split
from bench.load import (
    SPEED_LOOP_STEPS,
    LoadGuard,
    LoadRecord,
    speed_line,
    speed_reference,
    verdict,
)

ROOT = Path(__file__).resolve().parent.parent


def machine(speed_steps: int = SPEED_LOOP_STEPS) -> dict[str, str]:
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
        "load average (start)": load_averages(),
        "speed reference (start)": speed_line(speed_reference(speed_steps), speed_steps),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
    }


def load_averages() -> str:
    """The 1-, 5- and 15-minute load averages, as ``uptime`` shows them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


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


def table(measures: list[Measure]) -> list[str]:
    rows = [
        "| measure | baseline | baseline value | ours | ratio (> 1: ours better) "
        "| goal | result | 1-min load before → after | notes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in measures:
        ratio = m.ratio
        rows.append(
            f"| {m.name} | {m.baseline_name} | {_fmt(m.baseline, m.unit)} | "
            f"{_fmt(m.ours, m.unit)} | {'—' if ratio is None else f'{ratio:.2f}x'} | "
            f"{m.goal} | {verdict(m.met, m.load)} | "
            f"{'—' if m.load is None else m.load.describe()} | {m.note} |"
        )
    return rows


def load_summary(measures: list[Measure]) -> str:
    """One line: how many rows were taken on a busy machine or saw the load rise."""
    busy = [m.name for m in measures if m.load is not None and m.load.busy]
    rose = [m.name for m in measures if m.load is not None and m.load.rose]
    if not busy and not rose:
        return (
            "In this run no row was taken on a busy machine, and no other work pushed "
            "the load over during a measure."
        )
    return (
        f"In this run {len(busy)} of {len(measures)} rows were taken on a busy machine "
        f"and {len(rose)} saw the load rise during the measure."
    )


def write_markdown(
    path: Path,
    info: dict[str, str],
    measures: list[Measure],
    seconds: float,
    extra: list[str] | None = None,
    *,
    rule: list[str] | None = None,
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
    ]
    if rule:
        lines += ["## Busy machine rule", "", *rule, "", load_summary(measures), ""]
    lines += [
        "## Summary",
        "",
        *table(measures),
        "",
        *(extra or []),
        "## Details",
        "",
    ]
    for m in measures:
        details = m.details if m.load is None else {**m.details, "load": m.load.to_dict()}
        lines += [
            f"### {m.name}",
            "",
            "```json",
            json.dumps(details, indent=2, default=str),
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
    parser.add_argument(
        "--max-wait",
        type=float,
        default=120.0,
        help="seconds each measure waits at most for a busy machine to quieten",
    )
    args = parser.parse_args(argv)

    from bench import (
        endpoint,
        fresh_clone,
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
    guard = LoadGuard(
        cores=os.cpu_count() or 1,
        max_wait_s=args.max_wait,
        say=lambda line: print(line, flush=True),
    )
    dataset = ensure_mnist(progress=lambda m: print(f"dataset: {m}"))
    data = load_tutorial_split(dataset)
    measures: list[Measure] = []

    def step(title: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {title}", flush=True)

    def measure(fn: Callable[[], Measure | list[Measure]]) -> list[Measure]:
        """``fn``'s measures, taken under the load guard; they join the table."""
        got, load = guard.run(fn)
        out = _with_load(got if isinstance(got, list) else [got], load)
        measures.extend(out)
        return out

    step("1/8 recordIO write vs SDK v2")
    measure(lambda: recordio_write.run(data["train_x"], data["train_y"]))
    step("2/8 one training job vs scikit-learn")
    measure(lambda: training_job.run(data, repeat=args.repeat))
    step("3/8 whole local run")
    (run_measure, run_report), run_load = guard.run(local_run.whole_run)
    measures += _with_load([run_measure], run_load)
    step("3b/8 quality over several execution names")
    measure(lambda: local_run.quality_spread(args.spread))
    step(f"3c/8 default tuning over {args.seeds} tuner seeds, and the linear-model ceiling")
    measure(lambda: quality.seed_spread(data, args.seeds))
    measure(lambda: quality.linear_ceiling(data))
    step("4/8 local endpoint")
    model = _endpoint_model(data)
    measure(lambda: endpoint.run(model, data["test_x"]))
    step("5/8 Lambda sizing")
    template = synthesize().template
    memory = {
        str(r["Properties"]["Handler"]): int(r["Properties"].get("MemorySize", 128))
        for r in template["Resources"].values()
        if r.get("Type") == "AWS::Lambda::Function"
        and str(r.get("Properties", {}).get("Handler", "")).startswith("lambdas.")
    }
    measure(lambda: lambda_sizing.convert_step(dataset, memory["lambdas.convert.handler"]))
    measure(lambda_sizing.asset_size)
    step("6/8 cloud cost per execution")
    # Computed from the whole run's report: that run's load applies to it.
    measures += _with_load([local_run.cost(run_report, memory)], run_load)
    step("7/8 scale-out: Map child by shard count, 1 vs 2 training workers")
    digits = _digits(dataset)
    (children,) = measure(
        lambda: scale_out.shard_children(
            data["train_x"], digits, memory_mb=memory["lambdas.convert_shard.handler"]
        )
    )
    (training,) = measure(lambda: scale_out.workers(data, seeds=args.worker_seeds))
    from pipeline_core.config import DEFAULTS

    step("8/8 time to the first result on a fresh clone")
    measure(fresh_clone.first_run)
    measure(fresh_clone.setup)
    extra = scale_out.cloud_model(children, training, DEFAULTS.map_max_concurrency)
    info["load average (end)"] = load_averages()
    info["speed reference (end)"] = speed_line(speed_reference())
    seconds = time.perf_counter() - started
    write_markdown(args.out, info, measures, seconds, extra, rule=guard.rule())
    print()
    for row in table(measures):
        print(row)
    print(f"\n{load_summary(measures)}")
    print(f"wrote {args.out} ({seconds:.0f} s)")
    return 0


def _with_load(measures: list[Measure], load: LoadRecord) -> list[Measure]:
    for m in measures:
        m.load = load
    return measures


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
