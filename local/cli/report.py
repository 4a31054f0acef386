"""What the user gets from a local run: a terminal summary, ``report.json``,
``report.html`` and ``predictions.csv`` (written by Evaluate, copied from the
bucket), ``confusion_matrix.png`` and ``sample_digit.png``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


def confusion_table(cm: dict[str, int]) -> str:
    """The tutorial's ``pd.crosstab``: rows actual, columns predicted."""
    tn, fp, fn, tp = (int(cm[k]) for k in ("tn", "fp", "fn", "tp"))
    width = max(len(str(v)) for v in (tn, fp, fn, tp, 9999))
    lines = [
        f"{'predictions':>12} {'0':>{width}} {'1':>{width}}",
        "actuals",
        f"{'0':>12} {tn:>{width}} {fp:>{width}}",
        f"{'1':>12} {fn:>{width}} {tp:>{width}}",
    ]
    return "\n".join(lines)


def summary_lines(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    cm = report.get("confusion_matrix")
    metrics = report.get("metrics") or {}
    if cm:
        lines.append(confusion_table(cm))
        lines.append("")
    if metrics:
        lines.append(
            "accuracy {accuracy:.4f}   precision {precision:.4f}   "
            "recall {recall:.4f}   F1 {f1:.4f}".format(**metrics)
        )
    best = report.get("best_training_job") or {}
    if best:
        hp = ", ".join(f"{k}={v}" for k, v in sorted((best.get("hyperparameters") or {}).items()))
        objective = best.get("objective") or {}
        lines.append(
            f"best training job {best.get('name')}: "
            f"{objective.get('metric')} = {objective.get('value')}"
        )
        if hp:
            lines.append(f"  tuned hyperparameters: {hp}")
    if report.get("endpoint_name"):
        lines.append(f"endpoint {report['endpoint_name']}")
    if report.get("model_package_arn"):
        # Registered in this run's (embedded) account; a rollback by ARN needs
        # an account that lives on: python -m local services.
        lines.append(
            f"model version {report['model_package_arn']} ({report.get('approval_status')})"
        )
    return lines


#: What a run writes into its output folder; a reused folder loses these (and
#: only these) before the next run, so nothing from an earlier run survives.
OUTPUT_FILES = (
    "report.json",
    "report.json.tmp",
    "report.html",
    "predictions.csv",
    "confusion_matrix.png",
    "sample_digit.png",
)
OUTPUT_DIRS = ("bucket",)


def clear_outputs(out_dir: Path) -> list[Path]:
    """Remove the files and folders a run writes from ``out_dir``; what went."""
    removed: list[Path] = []
    for name in OUTPUT_FILES:
        path = out_dir / name
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(path)
    for name in OUTPUT_DIRS:
        path = out_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            removed.append(path)
    return removed


def write_report(out_dir: Path, report: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)
    return path


#: What Evaluate writes beside the bucket's report.json that the run folder gets too.
RUN_FILES = ("report.html", "predictions.csv")


def copy_run_files(s3: Any, bucket: str, run_prefix: str, out_dir: Path) -> Path | None:
    """Copy :data:`RUN_FILES` from the bucket's ``runs/<execution>/`` into the
    run folder; returns the copied ``report.html`` (None without one)."""
    html: Path | None = None
    for name in RUN_FILES:
        try:
            body = s3.get_object(Bucket=bucket, Key=f"{run_prefix}{name}")["Body"].read()
        except s3.exceptions.NoSuchKey:
            continue
        (out_dir / name).write_bytes(body)
        if name == "report.html":
            html = out_dir / name
    return html


def _figure(width: float, height: float) -> Any:
    """A figure drawn with Agg, without pyplot (no global figure state, and
    0.3 s less to import)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=120)


def plot_confusion_matrix(cm: dict[str, int], path: Path, title: str) -> Path:
    grid = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
    fig = _figure(4.2, 3.8)
    ax = fig.subplots()
    ax.imshow(grid, cmap="Blues")
    for (row, col), value in np.ndenumerate(grid):
        color = "white" if value > grid.max() / 2 else "black"
        ax.text(col, row, str(value), ha="center", va="center", color=color, fontsize=13)
    ax.set_xticks([0, 1], labels=["0", "1"])
    ax.set_yticks([0, 1], labels=["0", "1"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_digit(
    pixels: npt.NDArray[np.float32],
    label: int,
    prediction: int,
    score: float,
    path: Path,
    target_digit: int = 0,
) -> Path:
    """The tutorial's ``show_digit``: one 28x28 test image, its 0/1 label
    ("is it the target digit?") and the endpoint's prediction."""
    fig = _figure(2.8, 3.0)
    ax = fig.subplots()
    side = round(float(np.sqrt(pixels.size)))
    ax.imshow(pixels.reshape(side, side), cmap="gray")

    def word(value: int) -> str:
        return "yes" if value == 1 else "no"

    ax.set_title(
        f"is it a {target_digit}? actual: {word(label)}, predicted: {word(prediction)}\n"
        f"score {score:.3f}",
        fontsize=8,
    )
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    return path
