"""FinalizeDataset (after the Distributed Map): check every shard, write the manifest last."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, field, load_settings
from pipeline_core.inputs import RunSpec
from pipeline_core.shards import finalize_dataset

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
        data = finalize_dataset(
            RunSpec.from_dict(field(event, "run")),
            s.config,
            _clients(s),
            map_error=event.get("map_error"),
        )
    except Exception:
        logger.exception("FinalizeDataset failed")
        raise
    logger.info("dataset finalized", extra={"splits": data["splits"]})
    return data
