"""Evaluate: score the test set, write the report (``$.evaluation``).

Realtime and serverless: one single-row request, then the test split in
``evaluation_chunks`` requests to the endpoint. Mode ``none``: the Batch
Transform job's predictions, read from S3. Either way the report and the
execution output carry the ``endpoint`` and ``cost`` blocks; the report also
the tuning trials and the lineage, with ``predictions.csv`` and
``report.html`` beside it. The version this run registered gets the test AUC
and F1 as customer metadata.
"""

from __future__ import annotations

from typing import Any

from lambdas._env import Settings, client, field
from lambdas._handler import logger, task
from pipeline_core.costs import cost_block, endpoint_block
from pipeline_core.evaluate import endpoint_invoker, evaluate_deployment, write_report
from pipeline_core.inputs import RunSpec
from pipeline_core.lease import release
from pipeline_core.run_metrics import publish_run_metrics
from pipeline_core.run_report import (
    lineage,
    registry_metadata,
    tuning_trials,
    update_registered_version,
)
from pipeline_core.transform import transform_report


def _clients(s: Settings) -> tuple[Any, Any, Any]:
    """(s3, sagemaker-runtime, dynamodb)."""
    return (
        client("s3", s.region),
        client("sagemaker-runtime", s.region),
        client("dynamodb", s.region),
    )


def _metrics_client(s: Settings) -> Any:
    """CloudWatch, for the dashboard's custom metrics."""
    return client("cloudwatch", s.region)


def _sagemaker(s: Settings) -> Any:
    """The tuning job's trials; the registered version's metadata."""
    return client("sagemaker", s.region)


def lifecycle_blocks(event: dict[str, Any], run: RunSpec, s: Settings) -> dict[str, Any]:
    """``endpoint`` and ``cost`` from the state the execution carries."""
    deployed = event.get("deploy") or {}
    lifecycle = event.get("lifecycle") or {}
    transform = lifecycle.get("transform") or {}
    return {
        "endpoint": endpoint_block(
            run.endpoint_mode, deployed.get("endpoint_name"), lifecycle.get("ttl")
        ),
        "cost": cost_block(
            mode=run.endpoint_mode,
            training_instance_type=run.training_instance_type,
            training_instance_count=run.training_instance_count,
            billing=(event.get("tuning") or {}).get("billing"),
            spot=run.spot,
            transform_instance_type=run.transform_instance_type,
            transform_seconds=float(transform.get("seconds") or 0.0),
            endpoint_instance_type=run.endpoint_instance_type,
            endpoint_instance_count=run.endpoint_instance_count,
            ttl_hours=run.ttl_hours,
        ),
    }


@task("Evaluate")
def handler(event: dict[str, Any], context: object, s: Settings) -> dict[str, Any]:
    run = RunSpec.from_dict(field(event, "run"))
    data, deployed = field(event, "data"), field(event, "deploy")
    extra = {
        **lifecycle_blocks(event, run, s),
        # rows and recordIO objects per split, as converted; the jobs' instances
        "data": {"splits": data.get("splits")},
        "training_instance_count": run.training_instance_count,
    }
    registry = event.get("registry") or {}
    if registry:
        # The registered version this run deployed (report.json carries it).
        extra["registry"] = registry
    tuning = event.get("tuning") or {}
    sm = _sagemaker(s)
    extra["tuning_trials"] = tuning_trials(run, tuning, registry, sm)
    extra["lineage"] = lineage(
        run,
        s.config,
        data=data,
        deployed=deployed,
        tuning=tuning,
        registry=registry,
        execution_arn=event.get("execution_arn"),
    )
    s3, runtime, ddb = _clients(s)
    if run.endpoint_mode == "none":
        report = transform_report(run, data, deployed, s.config, s3)
        evaluation = write_report(run, s3, report, extra)
    else:
        evaluation = evaluate_deployment(
            run,
            data,
            deployed,
            s.config,
            s3,
            endpoint_invoker(runtime, str(deployed["endpoint_name"])),
            extra,
        )
        # The run is done with the endpoint: the next deploy to it may start.
        if s.lock_table:
            evaluation["lease_released"] = release(
                ddb, s.lock_table, endpoint_name=run.endpoint_name, holder=run.execution_name
            )
    evaluation["registry_metadata"] = update_registered_version(
        sm, registry, registry_metadata(evaluation), log=logger.warning
    )
    publish_run_metrics(
        _metrics_client(s),
        stack_tag=s.stack_tag,
        tuning=event.get("tuning"),
        metrics=evaluation["metrics"],
        log=logger.warning,
    )
    logger.info("evaluation done", extra={"metrics": evaluation["metrics"]})
    return evaluation
