"""FinalizeDataset (after the Distributed Map): check every shard, write the manifest last."""

from __future__ import annotations

from typing import Any

from lambdas._env import Settings, client, field
from lambdas._handler import logger, task
from pipeline_core.inputs import RunSpec
from pipeline_core.shards import finalize_dataset


def _clients(s: Settings) -> Any:
    return client("s3", s.region)


@task("FinalizeDataset")
def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
    data = finalize_dataset(
        RunSpec.from_dict(field(event, "run")),
        s.config,
        _clients(s),
        map_error=event.get("map_error"),
    )
    logger.info("dataset finalized", extra={"splits": data["splits"]})
    return data
