"""DescribeTuning: one poll of the tuning job plus the quality gate (``$.tuning``)."""

from __future__ import annotations

from typing import Any

from lambdas._env import Settings, client, field
from lambdas._handler import logger, task
from pipeline_core.inputs import RunSpec
from pipeline_core.status import describe_tuning


def _clients(s: Settings) -> Any:
    return client("sagemaker", s.region)


@task("DescribeTuning")
def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
    tuning = describe_tuning(
        RunSpec.from_dict(field(event, "run")), field(event, "tuning"), _clients(s)
    )
    logger.info("tuning status", extra={"status": tuning["status"], "gate": tuning["gate"]})
    return tuning
