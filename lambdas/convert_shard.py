"""ConvertShard (one Distributed Map child): one shard -> recordIO objects + receipt."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, field, load_settings
from pipeline_core.inputs import RunSpec
from pipeline_core.shards import convert_shard

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
        result = convert_shard(
            RunSpec.from_dict(field(event, "run")), s.config, field(event, "item"), _clients(s)
        )
    except Exception:
        logger.exception("ConvertShard failed")
        raise
    logger.info("shard converted", extra=result)
    return result
