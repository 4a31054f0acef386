"""ConvertDataset: safe-load the pickle, write recordIO splits (``$.data``)."""

from __future__ import annotations

from typing import Any

from lambdas._env import Settings, client, field
from lambdas._handler import logger, task
from pipeline_core.convert import convert_dataset
from pipeline_core.inputs import RunSpec, validate_source


def _clients(s: Settings) -> Any:
    return client("s3", s.region)


@task("ConvertDataset")
def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
    run = RunSpec.from_dict(field(event, "run"))
    validate_source(run.source, allow_local_sources=s.allow_local_sources)
    data = convert_dataset(run, s.config, _clients(s))
    logger.info("dataset converted", extra={"counts": data["counts"]})
    return data
