"""The data phase: from after ValidateInput to the start of tuning.

``SourceKind`` (Choice on ``$.run.source_kind``):

- ``pickle`` (the tutorial's single file): the existing ``ConvertDataset``;
- ``sharded`` (an ``s3://bucket/prefix/``): ``ConvertShards``, a Distributed
  Map with STANDARD children over the prefix (``ItemReader``
  ``s3:listObjectsV2``, ``MaxConcurrency`` from ``cdk.json``), one
  ``ConvertShard`` Lambda per shard object, then ``FinalizeDataset``, which
  writes the manifest last.

Everything stays within what moto's interpreter parses (no ``ItemBatcher``,
EXPRESS children or ``ResultWriter.WriterConfig``), so the local run executes
this very definition. Children's results are discarded (each writes a
receipt to S3 instead), so the state stays small for any shard count.

A child's error name does not survive a Distributed Map on AWS (the Map
fails with ``States.ExceedToleratedFailureThreshold``), and moto does not
enforce tolerated failures at all. So a child that finds a bad shard writes
a failure receipt before it raises, and both outcomes meet in
``FinalizeDataset``: after a clean Map, or as ``ShardConversionFailed``
after the Map's catch, it reads the receipts and raises the named error
with the shard's key and reason.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from pipeline_core.inputs import SOURCE_SHARDED

JsonPath = sfn.JsonPath

#: ``(state name, function, payload, result path)`` -> a task with the
#: pipeline's retries and catches (PipelineStateMachine._invoke).
Invoke = Callable[[str, lambda_.IFunction, dict[str, object], str], sfn.TaskStateBase]


def shard_task(
    scope: Construct, function: lambda_.IFunction, transient_errors: tuple[str, ...]
) -> tasks.LambdaInvoke:
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
    )
    task.add_retry(
        errors=list(transient_errors),
        interval=Duration.seconds(2),
        max_attempts=6,
        backoff_rate=2,
        jitter_strategy=sfn.JitterType.FULL,
    )
    return task


def data_phase(
    scope: Construct,
    *,
    invoke: Invoke,
    convert: sfn.IChainable,
    convert_shard: lambda_.IFunction,
    finalize: lambda_.IFunction,
    bucket: s3.IBucket,
    max_concurrency: int,
    transient_errors: tuple[str, ...],
) -> sfn.Chain:
    """The Choice and both branches; ``.next()`` of the result is StartTuning."""
    run = JsonPath.object_at("$.run")
    finalize_task = invoke("FinalizeDataset", finalize, {"run": run}, "$.data")
    after_failure = invoke(
        "ShardConversionFailed",
        finalize,
        {"run": run, "map_error": JsonPath.object_at("$.map_error")},
        "$.data",
    )
    shards = sfn.DistributedMap(
        scope,
        "ConvertShards",
        item_reader=sfn.S3ObjectsItemReader(
            bucket=bucket, prefix=JsonPath.string_at("$.run.source_prefix")
        ),
        item_selector={"run": run, "item": JsonPath.object_at("$$.Map.Item.Value")},
        max_concurrency=max_concurrency,
        map_execution_type=sfn.StateMachineType.STANDARD,
        result_path=JsonPath.DISCARD,
    )
    shards.item_processor(shard_task(scope, convert_shard, transient_errors))
    shards.add_catch(after_failure, errors=[sfn.Errors.ALL], result_path="$.map_error")
    choice = (
        sfn.Choice(scope, "SourceKind")
        .when(
            # Presence first: a Choice on a missing path is a runtime error on AWS.
            sfn.Condition.and_(
                sfn.Condition.is_present("$.run.source_kind"),
                sfn.Condition.string_equals("$.run.source_kind", SOURCE_SHARDED),
            ),
            shards.next(finalize_task),
        )
        .otherwise(convert)
    )
    # after_failure always raises; it joins the ends only so that it has a Next.
    chain = choice.afterwards()
    return sfn.Chain.custom(choice, [*chain.end_states, after_failure], finalize_task)
