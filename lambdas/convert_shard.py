"""ConvertShard (one Distributed Map child): one shard -> recordIO objects + receipt."""

from __future__ import annotations

from typing import Any

from lambdas._env import Settings, client, field
from lambdas._handler import logger, task
from pipeline_core.inputs import RunSpec
from pipeline_core.shards import convert_shard


def _clients(s: Settings) -> Any:
    return client("s3", s.region)


@task("ConvertShard")
def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
    result = convert_shard(
        RunSpec.from_dict(field(event, "run")), s.config, field(event, "item"), _clients(s)
    )
    logger.info("shard converted", extra=result)
    return result
