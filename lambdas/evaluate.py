"""Evaluate: score the test set against the endpoint, write the report (``$.evaluation``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from lambdas._env import Settings, client, field, load_settings
from pipeline_core.evaluate import endpoint_invoker, evaluate_deployment
from pipeline_core.inputs import RunSpec
from pipeline_core.lease import release

logger = Logger()
tracer = Tracer()


def _settings() -> Settings:
    return load_settings()


def _clients(s: Settings) -> tuple[Any, Any, Any]:
    """(s3, sagemaker-runtime, dynamodb)."""
    return (
        client("s3", s.region),
        client("sagemaker-runtime", s.region),
        client("dynamodb", s.region),
    )


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    s = _settings()
    try:
        deployed = field(event, "deploy")
        run = RunSpec.from_dict(field(event, "run"))
        s3, runtime, ddb = _clients(s)
        evaluation = evaluate_deployment(
            run,
            field(event, "data"),
            deployed,
            s.config,
            s3,
            endpoint_invoker(runtime, str(deployed["endpoint_name"])),
        )
        # The run is done with the endpoint: the next deploy to it may start.
        if s.lock_table:
            evaluation["lease_released"] = release(
                ddb, s.lock_table, endpoint_name=run.endpoint_name, holder=run.execution_name
            )
    except Exception:
        logger.exception("Evaluate failed")
        raise
    logger.info("evaluation done", extra={"metrics": evaluation["metrics"]})
    return evaluation
