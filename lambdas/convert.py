"""ConvertDataset: safe-load the pickle, write recordIO splits (``$.data``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, field, load_settings
from pipeline_core.convert import convert_dataset
from pipeline_core.inputs import RunSpec, validate_source

logger = Logger()
tracer = Tracer()


def _settings() -> Settings:
    return load_settings()


def _clients(s: Settings) -> Any:
    return client("s3", s.region)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    s = _settings()
    try:
        run = RunSpec.from_dict(field(event, "run"))
        validate_source(run.source, allow_local_sources=s.allow_local_sources)
        data = convert_dataset(run, s.config, _clients(s))
    except Exception:
        logger.exception("ConvertDataset failed")
        raise
    logger.info("dataset converted", extra={"counts": data["counts"]})
    return data
