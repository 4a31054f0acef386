"""Data phase: from after ValidateInput to the start of tuning.

``SourceKind`` (Choice on ``$.run.source_kind``):

- ``pickle`` (the tutorial's single file): the existing ``ConvertDataset``;
- ``sharded`` (an ``s3://bucket/prefix/``): ``ConvertShards``, a Distributed
  Map with STANDARD children over the prefix (``ItemReader``
  ``s3:listObjectsV2``, ``MaxConcurrency`` from ``cdk.json``), one
  ``ConvertShard`` Lambda per shard object, then ``FinalizeDataset``, which
  writes the manifest last.

Everything stays within what moto's interpreter parses (no ``ItemBatcher``,
EXPRESS children or ``ResultWriter.WriterConfig``), so the local run executes
this very definition. Each child ends with ``OutputPath: null`` (it writes a
receipt to S3 instead): ``ResultPath: null`` on the Map alone does not stop
Step Functions from aggregating the children's outputs, which would pass the
256 KB payload limit (``States.DataLimitExceeded``) at about 135 shards.

A child's error name does not survive a Distributed Map on AWS (the Map
fails with ``States.ExceedToleratedFailureThreshold``), and moto does not
enforce tolerated failures at all. So a child that finds a bad shard writes
a failure receipt before it raises, and both outcomes meet in
``FinalizeDataset``: after a clean Map, or as ``ShardConversionFailed``
after the Map's catch, it reads the receipts and raises the named error
with the shard's key and reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from pipeline_core.inputs import SOURCE_SHARDED
from stacks.phases.common import (
    LAMBDA_TRANSIENT_ERRORS,
    THROTTLING_ERROR,
    JsonPath,
    PipelineFunctions,
    Steps,
)

#: Lambda refused the invocation: the account's (or function's) concurrency is used up.
LAMBDA_THROTTLED = "Lambda.TooManyRequestsException"
#: A throttled child's retries: 5, 10, 20, 40, then every 60 s (before jitter),
#: 30 attempts: at most ~27 minutes of waiting.
THROTTLED_INTERVAL_SECONDS = 5
THROTTLED_MAX_DELAY_SECONDS = 60
THROTTLED_MAX_ATTEMPTS = 30


@dataclass(frozen=True)
class ShardSource:
    """Where sharded sources live (the stack's bucket) and how many shards
    convert at once (``cdk.json`` ``pipeline.map_max_concurrency``)."""

    bucket: s3.IBucket
    max_concurrency: int


def shard_task(scope: Construct, function: lambda_.IFunction) -> tasks.LambdaInvoke:
    """The Map child: retries, no catch (a child cannot reach the parent's states)."""
    task = tasks.LambdaInvoke(
        scope,
        "ConvertShard",
        lambda_function=function,
        payload=sfn.TaskInput.from_object(
            {"run": JsonPath.object_at("$.run"), "item": JsonPath.object_at("$.item")}
        ),
        payload_response_only=True,
        retry_on_service_exceptions=False,
        result_path=JsonPath.DISCARD,
        # The Map aggregates its children's outputs even with ResultPath null
        # (256 KB: States.DataLimitExceeded at ~135 shards): output nothing.
        output_path=JsonPath.DISCARD,
    )
    # First, so it matches before the general retrier below: the account's
    # Lambda concurrency quota (often 10 in a new account, shared by every
    # function) throttles children past it. Each waits its turn for up to
    # ~27 minutes (capped backoff, full jitter so they spread out) instead of
    # failing the whole Map as a conversion error.
    task.add_retry(
        errors=[LAMBDA_THROTTLED],
        interval=Duration.seconds(THROTTLED_INTERVAL_SECONDS),
        max_attempts=THROTTLED_MAX_ATTEMPTS,
        backoff_rate=2,
        max_delay=Duration.seconds(THROTTLED_MAX_DELAY_SECONDS),
        jitter_strategy=sfn.JitterType.FULL,
    )
    task.add_retry(
        errors=[*(e for e in LAMBDA_TRANSIENT_ERRORS if e != LAMBDA_THROTTLED), THROTTLING_ERROR],
        interval=Duration.seconds(2),
        max_attempts=6,
        backoff_rate=2,
        jitter_strategy=sfn.JitterType.FULL,
    )
    return task


def data_phase(
    steps: Steps,
    f: PipelineFunctions,
    then: sfn.IChainable,
    shards: ShardSource | None = None,
) -> sfn.IChainable:
    """SourceKind → ConvertDataset, or ConvertShards → FinalizeDataset; then
    ``then``. Writes ``$.data``. Without ``shards`` (or its functions) only
    the pickle path."""
    run = JsonPath.object_at("$.run")
    convert = steps.invoke("ConvertDataset", f.convert, {"run": run}, "$.data")
    convert.next(then)
    if shards is None or f.convert_shard is None or f.finalize_dataset is None:
        return convert
    finalize = steps.invoke("FinalizeDataset", f.finalize_dataset, {"run": run}, "$.data")
    finalize.next(then)
    after_failure = steps.invoke(
        "ShardConversionFailed",
        f.finalize_dataset,
        {"run": run, "map_error": JsonPath.object_at("$.map_error")},
        "$.data",
    )
    after_failure.next(then)  # it always raises; the Next only keeps the ASL valid
    scope = steps.scope
    convert_shards = sfn.DistributedMap(
        scope,
        "ConvertShards",
        item_reader=sfn.S3ObjectsItemReader(
            bucket=shards.bucket, prefix=JsonPath.string_at("$.run.source_prefix")
        ),
        item_selector={"run": run, "item": JsonPath.object_at("$$.Map.Item.Value")},
        max_concurrency=shards.max_concurrency,
        map_execution_type=sfn.StateMachineType.STANDARD,
        result_path=JsonPath.DISCARD,
    )
    convert_shards.item_processor(shard_task(scope, f.convert_shard))
    convert_shards.add_catch(after_failure, errors=[sfn.Errors.ALL], result_path="$.map_error")
    convert_shards.next(finalize)
    return (
        sfn.Choice(scope, "SourceKind")
        .when(
            # Presence first: a Choice on a missing path is a runtime error on AWS.
            sfn.Condition.and_(
                sfn.Condition.is_present("$.run.source_kind"),
                sfn.Condition.string_equals("$.run.source_kind", SOURCE_SHARDED),
            ),
            convert_shards,
        )
        .otherwise(convert)
    )
