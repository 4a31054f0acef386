"""cdk-nag AwsSolutions acknowledgements, one by one, each with a true reason.

Finding ids are built from the same values the stack uses, so they stay
correct when the name prefix or logical ids change, and rendered as cdk-nag
renders them (:func:`rendered`): the stack's region, account and partition
are ``<AWS::Region>``-style pseudo parameters in an environment-agnostic stack
and literals when ``cdk synth`` names them, and the ids follow either way.
Every acknowledgement is scoped to the construct that carries the finding.

This module does not import the stack (the stack imports it): it states what
it reads of the stack as the :class:`NaggedStack` protocol.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, Protocol

from aws_cdk import Acknowledgment as _Ack
from aws_cdk import CfnElement, Stack, Validations
from aws_cdk import aws_iam as iam
from constructs import IConstruct

from stacks.settings import StackSettings


class _Function(Protocol):
    @property
    def role(self) -> iam.IRole: ...

    @property
    def function(self) -> Any: ...


class NaggedStack(Protocol):
    """The parts of the pipeline stack the acknowledgements name."""

    @property
    def settings(self) -> StackSettings: ...

    @property
    def storage(self) -> Any: ...

    @property
    def functions(self) -> Mapping[str, _Function]: ...

    @property
    def sagemaker_role(self) -> iam.IRole: ...

    @property
    def model_package_group(self) -> str: ...

    @property
    def pipeline(self) -> Any: ...

    @property
    def cleanup(self) -> Any: ...

    @property
    def partition(self) -> str: ...

    @property
    def region(self) -> str: ...

    @property
    def account(self) -> str: ...

    def get_logical_id(self, element: CfnElement) -> str: ...

    def resolve(self, obj: Any) -> Any: ...

    def arn_prefix(self, service: str) -> str: ...

    def sagemaker_arn(self, resource: str) -> str: ...

    def schedule_arn(self) -> str: ...

    def model_package_arns(self) -> tuple[str, str]: ...

    def sagemaker_log_groups_arn(self) -> str: ...

    def executions_arn(self) -> str: ...


XRAY_REASON = (
    "X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) support no "
    "resource-level permissions, so CDK grants them on '*'."
)


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge one AwsSolutions finding on ``scope`` and its children."""
    Validations.of(scope).acknowledge(
        _Ack(id=f"AwsSolutions::AwsSolutions-{finding}", reason=reason)
    )


def _flatten(node: Any) -> str:
    """cdk-nag's ``flattenCfnReference``: a resolved value as it appears in a finding id."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(_flatten(item) for item in items)
        if "Fn::Sub" in node:
            return _flatten(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{_flatten(resource)}.{_flatten(attribute)}>"
        if "Fn::ImportValue" in node:
            return _flatten(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{_flatten(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"), ensure_ascii=False)


def rendered(stack: NaggedStack | Stack, value: str) -> str:
    """``value`` (tokens and all) as cdk-nag writes it in a finding id.

    The stack's region, account and partition render as ``<AWS::Region>``
    etc. when they are tokens (an environment-agnostic stack) and as their
    literal values when ``env`` names them (``cdk synth`` always names the
    region): an acknowledgement built through here matches either way.
    """
    return _flatten(stack.resolve(value))


def _lambda_basic_execution_arn() -> str:
    """The managed policy the Provider framework's functions have (CDK's own ARN)."""
    name = "service-role/AWSLambdaBasicExecutionRole"
    return iam.ManagedPolicy.from_aws_managed_policy_name(name).managed_policy_arn


def _arn_prefix(stack: NaggedStack, service: str) -> str:
    """``arn:<partition>:<service>:<region>:<account>:`` as cdk-nag renders it."""
    return rendered(stack, f"{stack.arn_prefix(service)}:")


def _ref(stack: NaggedStack | Stack, element: IConstruct, attribute: str) -> str:
    default_child = element.node.default_child
    assert isinstance(default_child, CfnElement)
    return f"<{stack.get_logical_id(default_child)}.{attribute}>"


def _sagemaker_finding(stack: NaggedStack, resource: str) -> str:
    return f"IAM5[Resource::{rendered(stack, stack.sagemaker_arn(resource))}]"


def _framework_id(stack: NaggedStack | Stack, provider: IConstruct, name: str) -> str:
    function = provider.node.find_child(f"framework-{name}")
    default_child = function.node.default_child
    assert isinstance(default_child, CfnElement)
    return stack.get_logical_id(default_child)


def acknowledge_findings(stack: NaggedStack) -> None:
    """All acknowledgements of the pipeline stack."""
    prefix = stack.settings.pipeline.name_prefix.lower()
    bucket = _ref(stack, stack.storage.bucket, "Arn")
    runs_objects = f"IAM5[Resource::{bucket}/runs/*]"
    runs_reason = (
        "Each execution reads and writes its own objects under runs/<execution>/ of the "
        "stack's bucket; the execution name is only known at run time."
    )
    name_reason = (
        f"SageMaker names are derived from each execution's name at run time; the grant is "
        f"limited to this stack's name prefix '{prefix}-'."
    )
    sagemaker_kinds = {
        "ValidateInput": ("endpoint-config", "endpoint"),
        "StartTuning": ("hyper-parameter-tuning-job", "training-job"),
        "DescribeTuning": ("hyper-parameter-tuning-job", "training-job"),
        "Deploy": ("model", "endpoint-config", "endpoint"),
        "DescribeEndpoint": ("model", "endpoint-config", "endpoint"),
        "Evaluate": ("endpoint", "hyper-parameter-tuning-job"),
        "Cleanup": (
            "hyper-parameter-tuning-job",
            "model",
            "endpoint-config",
            "endpoint",
            "transform-job",
        ),
        "StartTransform": ("model", "transform-job"),
        "DescribeTransform": ("transform-job", "model"),
        "EndpointTtl": ("model", "endpoint-config", "endpoint"),
        "ExecutionEnded": ("hyper-parameter-tuning-job", "transform-job"),
        "CleanupComplete": ("hyper-parameter-tuning-job", "model", "endpoint-config", "endpoint"),
    }
    schedules = f"IAM5[Resource::{rendered(stack, stack.schedule_arn())}]"
    schedule_reason = (
        f"A TTL schedule is named after its endpoint (chosen at run time); the grant is "
        f"limited to this stack's name prefix '{prefix}-' in the default group."
    )

    _acknowledge_registry(stack, runs_objects, runs_reason)
    for name, function in stack.functions.items():
        role = function.role
        star_reason = XRAY_REASON
        if name == "Evaluate":
            star_reason += (
                " cloudwatch:PutMetricData (the dashboard's run metrics) supports no "
                "resource-level permissions; it is limited to one namespace by condition."
            )
        if name in ("Cleanup", "CleanupComplete"):
            star_reason += (
                " sagemaker:ListEndpoints/ListEndpointConfigs/ListModels/ListTransformJobs/"
                "ListHyperParameterTuningJobs/ListModelPackages and scheduler:ListSchedules "
                "support no "
                "resource-level permissions; deletes are restricted by name prefix and by the "
                "stack tag condition (schedules: by their target, this stack's function)."
            )
        acknowledge(role, "IAM5[Resource::*]", star_reason)
        for kind in sagemaker_kinds.get(name, ()):
            acknowledge(role, _sagemaker_finding(stack, kind), name_reason)
        if name in ("Convert", "Evaluate", "ConvertShard", "FinalizeDataset"):
            acknowledge(role, runs_objects, runs_reason)
        if name in ("ScheduleEndpointTtl", "Cleanup"):
            acknowledge(role, schedules, schedule_reason)
    # TTL re-arms (EndpointTtl) and the TTL of a run that never scheduled one
    # (ExecutionEnded, which also reads the run's endpoint) create schedules too.
    for name in ("EndpointTtl", "ExecutionEnded"):
        acknowledge(stack.functions[name].role, schedules, schedule_reason)
    acknowledge(
        stack.functions["ExecutionEnded"].role, _sagemaker_finding(stack, "endpoint"), name_reason
    )
    acknowledge(
        stack.functions["Cleanup"].role,
        f"IAM5[Resource::{rendered(stack, stack.executions_arn())}]",
        "On stack delete, every running execution of this stack's state machine is stopped; "
        "execution names are chosen at start time.",
    )
    for reader in ("Convert", "ConvertShard"):
        acknowledge(
            stack.functions[reader].role,
            f"IAM5[Resource::{bucket}/*]",
            "Read only: any object of the stack's own bucket may be named as the dataset "
            "source (or a shard of it) in the execution input (writes are limited to runs/*).",
        )

    acknowledge(
        stack.functions["Convert"].role,
        f"IAM5[Resource::{bucket}/runs/*/data/manifest.json]",
        "Delete only each run's data/manifest.json: a reconversion removes the old manifest "
        "first so half-rewritten data is never marked usable; the execution name is only "
        "known at run time.",
    )

    sm_role = stack.sagemaker_role
    acknowledge(sm_role, runs_objects, runs_reason)
    acknowledge(
        sm_role,
        "IAM5[Resource::*]",
        "ecr:GetAuthorizationToken supports no resource-level permissions (image pulls are "
        "limited to the linear-learner repository); cloudwatch:PutMetricData supports none "
        "either and is limited to the /aws/sagemaker/* namespaces by condition.",
    )
    acknowledge(
        sm_role,
        f"IAM5[Resource::{rendered(stack, stack.sagemaker_log_groups_arn())}]",
        "SageMaker names the log groups of training jobs and endpoints itself "
        "(/aws/sagemaker/TrainingJobs, /aws/sagemaker/Endpoints/<name>).",
    )

    state_machine = stack.pipeline.state_machine
    acknowledge(
        state_machine,
        "IAM5[Resource::*]",
        XRAY_REASON + " CloudWatch Logs delivery actions (logs:CreateLogDelivery etc.) that "
        "Step Functions logging needs support no resource-level permissions either.",
    )
    state_machine_name = (
        '{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"'
        + stack.get_logical_id(state_machine.node.default_child)
        + '"}]}]}'
    )
    # CDK builds these ARNs with the stack's own region and account.
    executions = f"{_arn_prefix(stack, 'states')}execution:{state_machine_name}"
    for pattern in (f"{executions}:*", f"{executions}/*:*"):
        acknowledge(
            state_machine,
            f"IAM5[Resource::{pattern}]",
            "CDK's DistributedMap grants Describe/StopExecution on this state machine's own "
            "executions and their Map child executions, whose names are made at run time.",
        )
    pipeline_functions = stack.pipeline.functions
    for field in fields(pipeline_functions):
        function = getattr(pipeline_functions, field.name)
        if function is None:
            continue
        acknowledge(
            state_machine,
            f"IAM5[Resource::{_ref(stack, function, 'Arn')}:*]",
            "CDK's LambdaInvoke grants invoke on the function and its versions/aliases "
            "(<arn>:*); only this stack's function is reachable.",
        )

    provider = stack.cleanup.provider
    acknowledge(
        provider,
        f"IAM4[Policy::{rendered(stack, _lambda_basic_execution_arn())}]",
        "The aws-cdk-lib Provider framework's own onEvent function; the managed policy only "
        "grants writing its CloudWatch logs.",
    )
    acknowledge(
        provider,
        f"IAM5[Resource::{_ref(stack, stack.functions['Cleanup'].function, 'Arn')}:*]",
        "The Provider framework invokes the cleanup function and its versions (<arn>:*); "
        "nothing else.",
    )
    acknowledge(
        provider,
        f"IAM5[Resource::{_ref(stack, stack.functions['CleanupComplete'].function, 'Arn')}:*]",
        "The Provider framework invokes the isComplete function and its versions (<arn>:*); "
        "nothing else.",
    )
    for framework in ("isComplete", "onTimeout"):
        acknowledge(
            provider,
            f"IAM5[Resource::<{_framework_id(stack, provider, framework)}.Arn>:*]",
            "The Provider framework's waiter state machine invokes its own isComplete/"
            "onTimeout functions and their versions (<arn>:*); nothing else.",
        )
    acknowledge(
        provider,
        "IAM5[Resource::*]",
        "The Provider framework's waiter state machine logs to CloudWatch Logs and is traced; "
        "the log delivery actions (logs:CreateLogDelivery etc.) and X-Ray's "
        "PutTraceSegments/PutTelemetryRecords support no resource-level permissions.",
    )


def _acknowledge_registry(stack: NaggedStack, runs_objects: str, runs_reason: str) -> None:
    """Model registry: versions are numbered by SageMaker at run time."""
    group = stack.model_package_group.lower()
    versions = f"IAM5[Resource::{rendered(stack, stack.model_package_arns()[1])}]"
    reason = (
        f"Versions of this stack's Model Package Group '{group}' are numbered by SageMaker "
        "when registered; the grant covers that group's versions only."
    )
    for name in (
        "RegisterModel",
        "LoadModelPackage",
        "WaitForApproval",
        "ApprovalDecided",
        "Cleanup",
        "Evaluate",
    ):
        acknowledge(stack.functions[name].role, versions, reason)
    for name in ("WaitForApproval", "ApprovalDecided", "LoadModelPackage"):
        acknowledge(stack.functions[name].role, runs_objects, runs_reason)
