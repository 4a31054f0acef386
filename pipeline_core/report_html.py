"""``report.html``: one self-contained page from ``report.json`` and the
scored test set (curves, confusion matrix, threshold sweep, calibration,
tuning trials, cost and lineage). No script, stylesheet link, font or URL:
it opens from a disk, an S3 download or a mail attachment alike.

Every number the page shows that ``report.json`` also holds carries its exact
value in a ``data-value`` attribute, so a test can hold one to the other.
"""

from __future__ import annotations

import json
import re
from html import escape
from string import Template
from typing import Any

from pipeline_core.scoring import Scored, pr_curve, roc_curve, thin
from pipeline_core.svg import BLUE, GREY, ORANGE, Axis, Chart, fmt

_PAGE = Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
body{font-family:sans-serif;margin:1.5em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px}
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.chosen{background:#fde7c8;font-weight:bold}
.charts{display:flex;flex-wrap:wrap;gap:12px}.note{color:#666;font-size:.9em}
code{background:#f4f4f4;padding:0 3px}
</style></head><body>
<h1>$title</h1>
<p class="note">$subtitle</p>
$body
</body></html>
""")
_SCHEME = re.compile(r"\b[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def _text(value: Any) -> str:
    """Escaped text; a web address loses its scheme, so the page links nowhere
    (an ``s3://`` URI stays whole: it is a name, not a link)."""
    raw = value if isinstance(value, str) else json.dumps(value, default=str)
    return escape(_SCHEME.sub(lambda m: m.group(0) if m.group(0).lower() == "s3://" else "", raw))


def _num(value: float | None, name: str = "", digits: int = 4) -> str:
    """A table cell for a number, its exact value in ``data-value``."""
    if value is None:
        return '<td class="n">-</td>'
    attr = f' data-metric="{name}"' if name else ""
    shown = f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    return f'<td class="n"{attr} data-value="{value!r}">{shown}</td>'


def _summary(report: dict[str, Any]) -> str:
    m = report.get("metrics") or {}
    rows = [
        ("accuracy", "accuracy", m.get("accuracy")),
        ("precision", "precision", m.get("precision")),
        ("recall", "recall", m.get("recall")),
        ("F1", "f1", m.get("f1")),
        ("ROC AUC", "auc", m.get("auc")),
        ("PR AUC (average precision)", "pr_auc", m.get("pr_auc")),
        ("model threshold (score &ge;)", "threshold", report.get("threshold")),
        ("test records", "rows", report.get("rows")),
    ]
    cells = "".join(f"<tr><th>{label}</th>{_num(v, key, 6)}</tr>" for label, key, v in rows)
    return f"<h2>Summary</h2><table>{cells}</table>"


def _curves(report: dict[str, Any], scored: Scored) -> str:
    m = report.get("metrics") or {}
    fpr, tpr = roc_curve(scored)
    recall, precision = pr_curve(scored)
    roc = Chart(
        f"ROC, AUC {fmt_metric(m.get('auc'))}",
        Axis("false positive rate", 0, 1),
        Axis("true positive rate", 0, 1),
    )
    roc.line([(0, 0), (1, 1)], GREY, dashed=True).line(thin(fpr, tpr))
    pr = Chart(
        f"Precision-recall, AP {fmt_metric(m.get('pr_auc'))}",
        Axis("recall", 0, 1),
        Axis("precision", 0, 1),
    )
    base = float(scored.labels.mean()) if len(scored.labels) else 0.0
    pr.line([(0, base), (1, base)], GREY, dashed=True).line(thin(recall, precision))
    cm = report.get("confusion_matrix") or {}
    tp, fp, tn, fn = (int(cm.get(k, 0)) for k in ("tp", "fp", "tn", "fn"))
    if cm and tp + fn and tn + fp:
        note = f"model threshold {fmt(report['threshold'] or 0)}"
        roc.point(fp / (fp + tn), tp / (tp + fn), color=ORANGE, r=4.5, note=note)
        if tp + fp:
            pr.point(tp / (tp + fn), tp / (tp + fp), color=ORANGE, r=4.5, note=note)
    return (
        "<h2>ROC and precision-recall curves</h2>"
        f'<div class="charts">{roc.svg()}{pr.svg()}</div>'
        '<p class="note">Orange: the model\'s own threshold. Grey dashed: chance (ROC) and '
        "the share of positives (PR).</p>"
    )


def fmt_metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _confusion(report: dict[str, Any]) -> str:
    cm = report.get("confusion_matrix") or {}

    def cell(k: str) -> str:
        return f'<td class="n" data-cell="{k}">{int(cm.get(k, 0))}</td>'

    return (
        f"<h2>Confusion matrix at the model's threshold ({fmt(report.get('threshold') or 0)})"
        "</h2><table><tr><th>actual \\ predicted</th><th>0</th><th>1</th></tr>"
        f"<tr><th>0</th>{cell('tn')}{cell('fp')}</tr><tr><th>1</th>{cell('fn')}{cell('tp')}</tr>"
        "</table>"
    )


def _sweep(report: dict[str, Any]) -> str:
    head = "<tr><th>threshold</th><th>precision</th><th>recall</th><th>F1</th><th>TP</th>"
    head += "<th>FP</th><th>FN</th><th></th></tr>"
    rows = []
    for r in report.get("threshold_sweep") or []:
        mark = "model's threshold" if r["chosen"] else ""
        rows.append(
            f"<tr{' class=chosen' if r['chosen'] else ''}>{_num(r['threshold'], '', 4)}"
            f"{_num(r['precision'])}{_num(r['recall'])}{_num(r['f1'])}"
            f"{_num(r['tp'])}{_num(r['fp'])}{_num(r['fn'])}<td>{mark}</td></tr>"
        )
    return (
        "<h2>Threshold sweep</h2><p class=note>Predicted 1 when score &ge; threshold. The "
        "highlighted row is the threshold the model applied (read off its predictions).</p>"
        f"<table id=sweep>{head}{''.join(rows)}</table>"
    )


def _calibration(report: dict[str, Any]) -> str:
    bins = report.get("calibration") or []
    chart = Chart("Calibration", Axis("mean score", 0, 1), Axis("observed rate of 1", 0, 1))
    chart.line([(0, 0), (1, 1)], GREY, dashed=True)
    filled = [b for b in bins if b["count"]]
    total = max(1, sum(b["count"] for b in bins))
    for b in bins:  # a bar's height: the bin's share of the records
        if b["count"]:
            chart.bar(b["low"], b["high"], b["count"] / total)
    chart.line([(b["mean_score"], b["observed_rate"]) for b in filled])
    for b in filled:
        chart.point(b["mean_score"], b["observed_rate"], note=f"{b['count']} records")
    rows = "".join(
        f"<tr><td>{b['low']:.1f}-{b['high']:.1f}</td>{_num(b['count'])}"
        f"{_num(b['mean_score'])}{_num(b['observed_rate'])}</tr>"
        for b in bins
    )
    return (
        "<h2>Calibration</h2>"
        f'<div class="charts">{chart.svg()}<table><tr><th>score bin</th><th>records</th>'
        f"<th>mean score</th><th>observed rate</th></tr>{rows}</table></div>"
        '<p class="note">Ten equal-width score bins; grey bars: each bin\'s share of the '
        "records. A calibrated model's points lie on the diagonal.</p>"
    )


def _log_scale(r: dict[str, Any]) -> bool:
    """Logarithmic ranges, and ``Auto`` ones spanning two decades or more
    (SageMaker's Auto picks log scaling for such ranges too)."""
    if r.get("scaling") == "Logarithmic":
        return True
    lo, hi = float(r["min_value"]), float(r["max_value"])
    return r.get("scaling") == "Auto" and lo > 0 and hi / lo >= 100


def _trials(report: dict[str, Any]) -> str:
    tuning = report.get("tuning_trials") or {}
    trials = [t for t in tuning.get("trials") or [] if t.get("objective") is not None]
    if not trials:
        why = tuning.get("note") or "no tuning trials were recorded for this run"
        return f"<h2>Tuning trials</h2><p>{_text(why)}</p>"
    best = tuning.get("best_training_job")
    objective = str(tuning.get("objective_metric") or "objective")
    values = [float(t["objective"]) for t in trials]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.05 or 0.01
    charts = []
    for r in tuning.get("ranges") or []:
        name = str(r["name"])
        log = _log_scale(r)
        xs = [float(t["hyperparameters"][name]) for t in trials if name in t["hyperparameters"]]
        if not xs or (log and min(xs) <= 0):
            continue
        x_lo, x_hi = min(*xs, float(r["min_value"])), max(*xs, float(r["max_value"]))
        chart = Chart(name, Axis(name, x_lo, x_hi, log), Axis(objective, lo - pad, hi + pad))
        for t in sorted(trials, key=lambda t: t["name"] == best):
            if name in t["hyperparameters"]:
                won = t["name"] == best
                chart.point(
                    float(t["hyperparameters"][name]),
                    float(t["objective"]),
                    color=ORANGE if won else BLUE,
                    r=5 if won else 3,
                    note=f"{t['name']}: {t['objective']}",
                )
        charts.append(chart.svg())
    rows = "".join(
        f"<tr{' class=chosen' if t['name'] == best else ''}><td>{_text(t['name'])}</td>"
        f"<td>{_text(t.get('status'))}</td>{_num(t['objective'], '', 6)}"
        f"<td>{_text(t['hyperparameters'])}</td></tr>"
        for t in sorted(trials, key=lambda t: -float(t["objective"]))
    )
    return (
        f"<h2>Tuning trials ({len(trials)} with an objective, "
        f"{_text(tuning.get('objective_type') or '')} {_text(objective)})</h2>"
        f'<div class="charts">{"".join(charts)}</div>'
        '<p class="note">Orange: the best training job (the deployed model). Log axes for '
        "ranges with Logarithmic scaling, or Auto spanning two decades or more.</p>"
        f"<table><tr><th>training job</th><th>status</th><th>objective</th>"
        f"<th>tuned hyperparameters</th></tr>{rows}</table>"
    )


def _table(items: dict[str, Any]) -> str:
    """Keys and values (null ones left out); a nested object becomes a nested table."""
    rows = "".join(
        f"<tr><th>{_text(k)}</th><td>{_table(v) if isinstance(v, dict) and v else _text(v)}"
        "</td></tr>"
        for k, v in items.items()
        if v is not None
    )
    return f"<table>{rows}</table>"


def _pairs(title: str, items: dict[str, Any], note: str = "") -> str:
    extra = f'<p class="note">{note}</p>' if note else ""
    return f"<h2>{title}</h2>{extra}{_table(items)}"


def build_html(report: dict[str, Any], scored: Scored) -> str:
    """The whole page."""
    cost = report.get("cost") or {}
    cost_note = (
        "A cloud estimate from the prices copied in the repository (see its price table's "
        "source and date); a local run bills nothing."
    )
    digit = report.get("target_digit")
    title = f"Run report: {report.get('execution_name')}"
    subtitle = (
        f"Linear Learner, is it a {digit}? {report.get('rows')} test records; "
        "every score is in predictions.csv beside this page."
    )
    body = "".join(
        [
            _summary(report),
            _curves(report, scored),
            _confusion(report),
            _sweep(report),
            _calibration(report),
            _trials(report),
            _pairs("Cost (cloud estimate)", cost, cost_note) if cost else "",
            _pairs("Lineage", report.get("lineage") or {}),
        ]
    )
    return _PAGE.substitute(title=_text(title), subtitle=_text(subtitle), body=body)
