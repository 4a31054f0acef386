"""Linear Learner's log lines, in the format its MetricDefinitions parse.

SageMaker reads a built-in algorithm's metrics from its log with the
algorithm's own ``MetricDefinitions``. The regexes below are the binary
classifier's entries of those the ``linear-learner:1`` image declares, as a
real ``DescribeHyperParameterTuningJob`` response lists them under
``TrainingJobDefinition.AlgorithmSpecification.MetricDefinitions`` (an
eu-west-2 tuning job of that image, quoted in a public repository). Our
trainer writes its metric lines so that every one of them parses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: Name -> Regex, verbatim from the algorithm's MetricDefinitions.
METRIC_DEFINITIONS: tuple[dict[str, str], ...] = tuple(
    {"Name": name, "Regex": regex}
    for name, regex in (
        ("train:progress", r"#progress_metric: host=\S+, completed (\S+) %"),
        (
            "train:throughput",
            r"#throughput_metric: host=\S+, train throughput=(\S+) records/second",
        ),
        (
            "train:objective_loss",
            r"#quality_metric: host=\S+, epoch=\S+, train \S+_objective <loss>=(\S+)",
        ),
        (
            "train:objective_loss:final",
            r"#quality_metric: host=\S+, train \S+_objective <loss>=(\S+)",
        ),
        (
            "validation:objective_loss",
            r"#quality_metric: host=\S+, epoch=\S+, validation \S+_objective <loss>=(\S+)",
        ),
        (
            "validation:objective_loss:final",
            r"#quality_metric: host=\S+, validation \S+_objective <loss>=(\S+)",
        ),
        ("test:objective_loss", r"#quality_metric: host=\S+, test \S+_objective <loss>=(\S+)"),
        ("train:binary_f_beta", r"#quality_metric: host=\S+, train binary_f_\S+ <score>=(\S+)"),
        (
            "validation:binary_f_beta",
            r"#quality_metric: host=\S+, validation binary_f_\S+ <score>=(\S+)",
        ),
        ("test:binary_f_beta", r"#quality_metric: host=\S+, test binary_f_\S+ <score>=(\S+)"),
        (
            "train:binary_classification_accuracy",
            r"#quality_metric: host=\S+, train binary_classification_accuracy <score>=(\S+)",
        ),
        (
            "validation:binary_classification_accuracy",
            r"#quality_metric: host=\S+, validation binary_classification_accuracy <score>=(\S+)",
        ),
        (
            "test:binary_classification_accuracy",
            r"#quality_metric: host=\S+, test binary_classification_accuracy <score>=(\S+)",
        ),
        ("train:precision", r"#quality_metric: host=\S+, train precision <score>=(\S+)"),
        ("validation:precision", r"#quality_metric: host=\S+, validation precision <score>=(\S+)"),
        ("test:precision", r"#quality_metric: host=\S+, test precision <score>=(\S+)"),
        ("train:recall", r"#quality_metric: host=\S+, train recall <score>=(\S+)"),
        ("validation:recall", r"#quality_metric: host=\S+, validation recall <score>=(\S+)"),
        ("test:recall", r"#quality_metric: host=\S+, test recall <score>=(\S+)"),
    )
)

#: The loss's name in the log (logistic loss is "binary_classification_cross_entropy").
_LOSS_NAMES = {
    "logistic": "binary_classification_cross_entropy",
    "hinge_loss": "hinge_loss",
}


def metric_lines(
    metrics: Mapping[str, float],
    epoch: int | None,
    *,
    host: str = "algo-1",
    f_beta: float = 1.0,
    loss: str = "logistic",
) -> list[str]:
    """``#quality_metric`` lines for ``{"<channel>:<metric>": value}``: per
    epoch with ``epoch=N``, final ones without (as the algorithm logs them)."""
    where = f"host={host}, epoch={epoch}, " if epoch is not None else f"host={host}, "
    lines = []
    for name, value in metrics.items():
        channel, _, key = name.partition(":")
        if key == "objective_loss":
            label = f"{_LOSS_NAMES.get(loss, loss)}_objective <loss>"
        elif key == "binary_f_beta":
            label = f"binary_f_{f_beta:.3f} <score>"
        else:
            label = f"{key} <score>"
        lines.append(f"#quality_metric: {where}{channel} {label}={value}")
    return lines


_COMPILED = tuple((d["Name"], re.compile(d["Regex"])) for d in METRIC_DEFINITIONS)


def line_metrics(line: str) -> list[tuple[str, float]]:
    """Every MetricDefinition one log line matches, as SageMaker reads it."""
    found = []
    for name, pattern in _COMPILED:
        match = pattern.search(line)
        if match:
            try:
                found.append((name, float(match.group(1))))
            except ValueError:
                continue
    return found


def parse_metrics(lines: list[str]) -> dict[str, float]:
    """The last value of every MetricDefinition found in ``lines``."""
    found: dict[str, float] = {}
    for definition in METRIC_DEFINITIONS:
        pattern = re.compile(definition["Regex"])
        for line in lines:
            match = pattern.search(line)
            if match:
                found[definition["Name"]] = float(match.group(1))
    return found
