"""The tuning objective: which metric a tuning job optimises, and which way.

:data:`OBJECTIVE_METRICS` are the final metrics a local training job reports
(``training.trainer``), so the only ones a ``HyperParameterTuningJobObjective``
may name. :class:`Objective` turns a job's metrics into its objective value
and ranks jobs by it: the best value wins, ties go to the earlier job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from training import request_fields
from training.errors import TuningRequestError

#: Metrics a local training job reports at the end, usable as the objective.
OBJECTIVE_METRICS = frozenset(
    {
        "validation:binary_f_beta",
        "validation:binary_classification_accuracy",
        "validation:precision",
        "validation:recall",
        "validation:roc_auc_score",
        "validation:objective_loss",
        "train:objective_loss",
        # with a test channel
        "test:binary_f_beta",
        "test:binary_classification_accuracy",
        "test:precision",
        "test:recall",
        "test:roc_auc_score",
        "test:objective_loss",
    }
)

ObjectiveType = Literal["Maximize", "Minimize"]


@dataclass(frozen=True)
class Objective:
    """A ``HyperParameterTuningJobObjective``: ``Type`` and ``MetricName``."""

    type: ObjectiveType
    metric: str

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        """The direction of the objective, as Optuna spells it."""
        return "maximize" if self.type == "Maximize" else "minimize"

    def value(self, metrics: Mapping[str, float]) -> float | None:
        """The objective value among a job's final ``metrics``; ``None`` when
        the job did not report it or reported a value that is not finite."""
        value = metrics.get(self.metric)
        return value if value is not None and math.isfinite(value) else None

    def rank(self, value: float, index: int) -> tuple[float, int]:
        """Sort key of job number ``index`` with objective ``value``: the
        largest key is the best job (ties go to the earlier job)."""
        sign = 1.0 if self.type == "Maximize" else -1.0
        return sign * value, -index

    def as_final_metric(self, value: float) -> dict[str, Any]:
        """``FinalHyperParameterTuningJobObjectiveMetric`` of a job summary."""
        return {"Type": self.type, "MetricName": self.metric, "Value": value}


def parse_objective(objective: Any) -> Objective:
    """``HyperParameterTuningJobObjective`` of a request, checked."""
    if not isinstance(objective, Mapping):
        raise TuningRequestError("HyperParameterTuningJobObjective is required")
    kind = objective.get("Type")
    if kind not in ("Maximize", "Minimize"):
        raise TuningRequestError("HyperParameterTuningJobObjective.Type: Maximize or Minimize")
    metric = request_fields.string(
        objective.get("MetricName"), "HyperParameterTuningJobObjective.MetricName"
    )
    if metric not in OBJECTIVE_METRICS:
        raise TuningRequestError(
            f"MetricName {metric!r} is not a Linear Learner metric ({sorted(OBJECTIVE_METRICS)})"
        )
    return Objective(kind, metric)
