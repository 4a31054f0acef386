"""Every IAM permission the stack grants its own roles: one table per role.

:data:`GRANTS` maps a role's name (the Lambda's name in
:data:`stacks.functions.FUNCTION_SPECS`, or one of the service roles in
:data:`SERVICE_ROLES`) to its grants, in the order they become statements.
A :class:`Grant` names its resources (:class:`On`) and conditions (:class:`If`)
symbolically; :func:`apply_grants` resolves them against the stack's
:class:`Targets` and adds one policy statement per grant. docs/IAM.md explains
each of them; tests/stack/test_iam_calls.py holds the functions' tables to the
calls their handlers make.

This module does not import the stack (the stack imports it): the stack hands
over its roles and the ARNs behind each :class:`On`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aws_cdk import aws_iam as iam
from constructs import Construct

from pipeline_core import run_metrics
from pipeline_core.names import STACK_TAG_KEY


class On(StrEnum):
    """What a grant applies to (each resolves to the ARNs in :class:`Targets`)."""

    ANY = "*"
    TUTORIAL_OBJECT = "the public tutorial dataset of the stack's region"
    BUCKET = "the data bucket"
    BUCKET_OBJECTS = "every object of the data bucket"
    RUNS_OBJECTS = "objects under runs/"
    MANIFESTS = "every run's data/manifest.json"
    TUNING_JOB = "hyper-parameter-tuning-job/<p>-*"
    TRAINING_JOB = "training-job/<p>-*"
    MODEL = "model/<p>-*"
    ENDPOINT_CONFIG = "endpoint-config/<p>-*"
    ENDPOINT = "endpoint/<p>-*"
    TRANSFORM_JOB = "transform-job/<p>-*"
    MODEL_PACKAGE_GROUP = "the stack's Model Package Group"
    MODEL_PACKAGES = "the versions of that group"
    LEASE_TABLE = "the endpoint lease table"
    TOPIC = "the notification topic"
    KEY = "the customer key (nothing without enable_kms)"
    SAGEMAKER_ROLE = "the SageMaker execution role"
    SCHEDULER_ROLE = "the role TTL schedules invoke EndpointTtl as"
    SCHEDULES = "TTL schedules: default group, <prefix>-*"
    STATE_MACHINE = "the pipeline state machine"
    EXECUTIONS = "its executions"
    ENDPOINT_TTL_FUNCTION = "the EndpointTtl function"
    ROLLBACK_ALARMS = "the alarms an endpoint update rolls back on"
    IMAGE_REPOSITORY = "the region's linear-learner image repository"
    SAGEMAKER_LOG_GROUPS = "log groups /aws/sagemaker/*"


class If(StrEnum):
    """Conditions that depend on the stack (resolved by :func:`apply_grants`)."""

    #: The resource carries this stack's tag.
    TAGGED = "aws:ResourceTag/<stack tag key> = the stack tag"
    #: The Create request tags the new resource with this stack.
    REQUEST_TAGGED = "aws:RequestTag/<stack tag key> = the stack tag"
    #: Create calls that launch instances may only ask for the allowlist
    #: (the same list ValidateInput enforces: cdk.json allowed_instance_types).
    ALLOWED_INSTANCE_TYPES = "sagemaker:InstanceTypes in allowed_instance_types"


#: A condition: symbolic, or a literal IAM condition block.
Condition = If | Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Grant:
    """One policy statement: ``actions`` on ``resources`` if all ``conditions`` hold."""

    actions: tuple[str, ...]
    resources: tuple[On, ...]
    conditions: tuple[Condition, ...] = ()
    #: Construct id suffix of a policy of its own (None: the role's default policy).
    own_policy: str | None = None


def allow(
    *actions: str,
    on: On | tuple[On, ...],
    when: Condition | tuple[Condition, ...] = (),
    own_policy: str | None = None,
) -> Grant:
    """A :class:`Grant`, written compactly."""
    return Grant(
        actions=actions,
        resources=on if isinstance(on, tuple) else (on,),
        conditions=when if isinstance(when, tuple) else (when,),
        own_policy=own_policy,
    )


# -- building blocks shared by several tables -----------------------------------------

#: What SSE-KMS reads and writes of the Lambdas and the state machine need
#: (spelled out: CDK's grant_encrypt_decrypt uses wildcard actions such as
#: GenerateDataKey*): envelope encryption never calls kms:Encrypt for them.
KMS_ENCRYPT_DECRYPT: tuple[str, ...] = ("kms:Decrypt", "kms:GenerateDataKey")
#: The SageMaker execution role also needs kms:Encrypt: the API reference of
#: OutputDataConfig.KmsKeyId requires it of the role the job runs as.
KMS_SAGEMAKER_OUTPUT: tuple[str, ...] = ("kms:Encrypt",)


def objects(*, read: bool, write: bool) -> tuple[Grant, ...]:
    """Object access under ``runs/`` only (and our key, if the bucket uses it)."""
    actions = (("s3:GetObject",) if read else ()) + (("s3:PutObject",) if write else ())
    return (
        allow(*actions, on=On.RUNS_OBJECTS),
        allow(*(KMS_ENCRYPT_DECRYPT if write else ("kms:Decrypt",)), on=On.KEY),
    )


#: sns:Publish on the topic (and our key, if the topic uses it).
PUBLISH = (allow("sns:Publish", on=On.TOPIC), allow(*KMS_ENCRYPT_DECRYPT, on=On.KEY))

#: The SageMaker execution role, passed to SageMaker only.
PASS_SAGEMAKER_ROLE = allow(
    "iam:PassRole",
    on=On.SAGEMAKER_ROLE,
    when={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
)

#: Create* calls naming our key let SageMaker create grants on it (volumes of
#: training jobs and endpoints), and only for AWS resources.
KEY_FOR_SAGEMAKER_CALLS = (
    allow("kms:DescribeKey", on=On.KEY),
    allow("kms:CreateGrant", on=On.KEY, when={"Bool": {"kms:GrantIsForAWSResource": "true"}}),
)


def schedule_ttl(*actions: str) -> tuple[Grant, ...]:
    """Endpoint TTL schedules (``<prefix>-*`` in the default group), invoking
    EndpointTtl as the scheduler role (passed to Scheduler only)."""
    return (
        allow(*actions, on=On.SCHEDULES),
        allow(
            "iam:PassRole",
            on=On.SCHEDULER_ROLE,
            when={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
        ),
    )


#: Find, check the stack tag of, and remove what executions left (Cleanup, CleanupComplete).
_LIST_SAGEMAKER = allow(
    "sagemaker:ListEndpointConfigs",
    "sagemaker:ListEndpoints",
    "sagemaker:ListHyperParameterTuningJobs",
    "sagemaker:ListModels",
    on=On.ANY,
)
_LEFT_BEHIND = (On.ENDPOINT, On.ENDPOINT_CONFIG, On.MODEL, On.TUNING_JOB)
_DELETE_LEFT_BEHIND = allow(
    "sagemaker:DeleteEndpoint",
    "sagemaker:DeleteEndpointConfig",
    "sagemaker:DeleteModel",
    "sagemaker:StopHyperParameterTuningJob",
    on=_LEFT_BEHIND,
    when=If.TAGGED,
)

#: The state machine invokes WaitForApproval: a function's own policy naming
#: the state machine keeps the function from depending on it.
_SEND_TASK_RESULT = allow(
    "states:SendTaskSuccess",
    "states:SendTaskFailure",
    on=On.STATE_MACHINE,
    own_policy="TaskResponse",
)

#: The service roles the stack grants to (besides every function's role).
SERVICE_ROLES: tuple[str, ...] = (
    "SageMakerExecution",
    "EndpointTtlScheduler",
    "StateMachine",
    "RetrainingSchedule",
)

# -- the tables ---------------------------------------------------------------------------

GRANTS: Mapping[str, tuple[Grant, ...]] = {
    # The run's endpoint and its config: a run of the other kind (instance-based
    # vs serverless) is refused before anything costs money.
    "ValidateInput": (
        allow(
            "sagemaker:DescribeEndpoint",
            "sagemaker:DescribeEndpointConfig",
            on=(On.ENDPOINT, On.ENDPOINT_CONFIG),
        ),
    ),
    "Convert": (
        allow("s3:GetObject", on=On.TUTORIAL_OBJECT),
        # Any key of our own bucket may be a source; writes stay under runs/.
        allow("s3:GetObject", on=On.BUCKET_OBJECTS),
        *objects(read=True, write=True),
        # A reconversion first removes the old manifest (no stale data marked usable).
        allow("s3:DeleteObject", on=On.MANIFESTS),
        # Lets a missing source object read as 404 (SourceNotFound), not 403.
        allow("s3:ListBucket", on=On.BUCKET),
    ),
    "ConvertShard": (
        # A shard may be any key of our bucket (like a pickle source); writes under runs/.
        allow("s3:GetObject", on=On.BUCKET_OBJECTS),
        *objects(read=True, write=True),
        # Lets a missing shard read as 404 (SourceNotFound), not 403.
        allow("s3:ListBucket", on=On.BUCKET),
    ),
    "FinalizeDataset": (
        # Lists the source prefix and reads the receipts under runs/; writes the manifest.
        allow("s3:ListBucket", on=On.BUCKET),
        *objects(read=True, write=True),
    ),
    "StartTuning": (
        allow(
            "sagemaker:CreateHyperParameterTuningJob",
            on=On.TUNING_JOB,
            when=(If.REQUEST_TAGGED, If.ALLOWED_INSTANCE_TYPES),
        ),
        # An existing job of that name is adopted only if its tags are this run's.
        allow("sagemaker:DescribeHyperParameterTuningJob", "sagemaker:ListTags", on=On.TUNING_JOB),
        allow("sagemaker:AddTags", on=(On.TUNING_JOB, On.TRAINING_JOB), when=If.REQUEST_TAGGED),
        PASS_SAGEMAKER_ROLE,
        # No S3: SageMaker reads the channels and writes artifacts as its own role.
        *KEY_FOR_SAGEMAKER_CALLS,
    ),
    "DescribeTuning": (
        allow("sagemaker:DescribeHyperParameterTuningJob", on=On.TUNING_JOB),
        allow("sagemaker:DescribeTrainingJob", on=On.TRAINING_JOB),
        # Billable seconds of every training job once the tuning job ended (cost block).
        allow("sagemaker:ListTrainingJobsForHyperParameterTuningJob", on=On.TUNING_JOB),
    ),
    # The model artifacts come in $.tuning.best: nothing of the tuning job is read.
    # Creates only with this stack's tag in the request; updates only of
    # endpoints (and to configs) that carry it.
    "Deploy": (
        allow("sagemaker:CreateModel", on=On.MODEL, when=If.REQUEST_TAGGED),
        allow(
            "sagemaker:CreateEndpointConfig",
            on=On.ENDPOINT_CONFIG,
            when=(If.REQUEST_TAGGED, If.ALLOWED_INSTANCE_TYPES),
        ),
        allow(
            "sagemaker:CreateEndpoint",
            on=(On.ENDPOINT, On.ENDPOINT_CONFIG),
            when=If.REQUEST_TAGGED,
        ),
        allow("sagemaker:UpdateEndpoint", on=(On.ENDPOINT, On.ENDPOINT_CONFIG), when=If.TAGGED),
        # ListTags: an existing endpoint is only touched if this stack tagged it,
        # an existing model/config (or endpoint) only adopted if this run created it.
        allow(
            "sagemaker:DescribeEndpoint",
            "sagemaker:DescribeEndpointConfig",
            "sagemaker:DescribeModel",
            "sagemaker:ListTags",
            on=(On.ENDPOINT, On.ENDPOINT_CONFIG, On.MODEL),
        ),
        allow(
            "sagemaker:AddTags",
            on=(On.MODEL, On.ENDPOINT_CONFIG, On.ENDPOINT),
            when=If.REQUEST_TAGGED,
        ),
        # The endpoint's lease: one deploy at a time (released at once on failure).
        allow("dynamodb:PutItem", "dynamodb:DeleteItem", on=On.LEASE_TABLE),
        # A Failed endpoint can only be deleted; only ever one this stack tagged.
        allow("sagemaker:DeleteEndpoint", on=On.ENDPOINT, when=If.TAGGED),
        PASS_SAGEMAKER_ROLE,
        *KEY_FOR_SAGEMAKER_CALLS,
    ),
    "DescribeEndpoint": (
        allow("sagemaker:DescribeEndpoint", on=On.ENDPOINT),
        # A failed deployment frees the endpoint's lease.
        allow("dynamodb:DeleteItem", on=On.LEASE_TABLE),
        # Retire the config this run superseded (and its model), or discard its
        # own rolled-back ones: named resources only, no listing.
        allow("sagemaker:DescribeEndpointConfig", "sagemaker:ListTags", on=On.ENDPOINT_CONFIG),
        allow(
            "sagemaker:DeleteEndpointConfig",
            "sagemaker:DeleteModel",
            on=(On.ENDPOINT_CONFIG, On.MODEL),
            when=If.TAGGED,
        ),
    ),
    "Evaluate": (
        allow("sagemaker:InvokeEndpoint", on=On.ENDPOINT, when=If.TAGGED),
        # The report's tuning trials.
        allow("sagemaker:ListTrainingJobsForHyperParameterTuningJob", on=On.TUNING_JOB),
        # The test AUC and F1 on the version this run registered (customer metadata).
        allow("sagemaker:UpdateModelPackage", on=On.MODEL_PACKAGES),
        # Done with the endpoint: release its lease.
        allow("dynamodb:DeleteItem", on=On.LEASE_TABLE),
        *objects(read=True, write=True),
        # The dashboard's custom metrics (PutMetricData has no resource scope).
        allow(
            "cloudwatch:PutMetricData",
            on=On.ANY,
            when={"StringEquals": {"cloudwatch:namespace": run_metrics.NAMESPACE}},
        ),
    ),
    "ScheduleEndpointTtl": schedule_ttl(
        "scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"
    ),
    "StartTransform": (
        allow("sagemaker:CreateModel", on=On.MODEL, when=If.REQUEST_TAGGED),
        allow(
            "sagemaker:CreateTransformJob",
            on=(On.TRANSFORM_JOB, On.MODEL),
            when=(If.REQUEST_TAGGED, If.ALLOWED_INSTANCE_TYPES),
        ),
        allow("sagemaker:AddTags", on=(On.MODEL, On.TRANSFORM_JOB), when=If.REQUEST_TAGGED),
        # A retry adopts the model / job it finds only if their tags are this run's.
        allow(
            "sagemaker:DescribeModel",
            "sagemaker:DescribeTransformJob",
            "sagemaker:ListTags",
            on=(On.MODEL, On.TRANSFORM_JOB),
        ),
        PASS_SAGEMAKER_ROLE,
        *KEY_FOR_SAGEMAKER_CALLS,
    ),
    "DescribeTransform": (
        allow("sagemaker:DescribeTransformJob", on=On.TRANSFORM_JOB),
        # The job has ended: delete its model (of this stack only).
        allow("sagemaker:DeleteModel", on=On.MODEL, when=If.TAGGED),
    ),
    # A version of the stack's own group only. The request carries no Tags
    # (the API refuses them with a group: a version uses the group's, which
    # carries the stack tag), so neither aws:RequestTag nor AddTags applies.
    "RegisterModel": (
        allow("sagemaker:CreateModelPackage", on=(On.MODEL_PACKAGE_GROUP, On.MODEL_PACKAGES)),
    ),
    "LoadModelPackage": (
        allow("sagemaker:DescribeModelPackage", on=On.MODEL_PACKAGES),
        # The version's test data (its run's test split or manifest) must still exist;
        # ListBucket lets a missing object read as 404, not 403.
        *objects(read=True, write=False),
        allow("s3:ListBucket", on=On.BUCKET),
    ),
    "WaitForApproval": (
        allow("sagemaker:DescribeModelPackage", on=On.MODEL_PACKAGES),
        _SEND_TASK_RESULT,
        *objects(read=False, write=True),
    ),
    "ApprovalDecided": (
        # The on-failure destination publishes as the function's role.
        *PUBLISH,
        allow("sagemaker:DescribeModelPackage", on=On.MODEL_PACKAGES),
        _SEND_TASK_RESULT,
        *objects(read=True, write=False),
    ),
    "EndpointTtl": (
        allow("sagemaker:DescribeEndpoint", "sagemaker:ListTags", on=On.ENDPOINT),
        allow("sagemaker:DescribeEndpointConfig", on=On.ENDPOINT_CONFIG),
        allow(
            "sagemaker:DeleteEndpoint",
            "sagemaker:DeleteEndpointConfig",
            "sagemaker:DeleteModel",
            on=(On.ENDPOINT, On.ENDPOINT_CONFIG, On.MODEL),
            when=If.TAGGED,
        ),
        # A busy endpoint: a new one-time schedule; a re-armed one first looks
        # for a newer TTL schedule of the endpoint (a later run's).
        *schedule_ttl("scheduler:CreateSchedule", "scheduler:GetSchedule"),
        *PUBLISH,
    ),
    "ExecutionEnded": (
        allow(
            "sagemaker:DescribeHyperParameterTuningJob",
            "sagemaker:DescribeTransformJob",
            on=(On.TUNING_JOB, On.TRANSFORM_JOB),
        ),
        allow(
            "sagemaker:StopHyperParameterTuningJob",
            "sagemaker:StopTransformJob",
            on=(On.TUNING_JOB, On.TRANSFORM_JOB),
            when=If.TAGGED,
        ),
        # Whatever endpoint lease the run still holds is given back at once.
        allow("dynamodb:Scan", "dynamodb:DeleteItem", on=On.LEASE_TABLE),
        # A run that deployed but never scheduled its TTL: is the endpoint this
        # run's and this stack's? Then its TTL schedule (unless one exists).
        allow("sagemaker:DescribeEndpoint", "sagemaker:ListTags", on=On.ENDPOINT),
        *schedule_ttl("scheduler:CreateSchedule"),
        *PUBLISH,
    ),
    "Cleanup": (
        # The registry's versions go with the group (removal policy destroy).
        allow("sagemaker:ListModelPackages", on=On.ANY),
        allow("sagemaker:DeleteModelPackage", on=On.MODEL_PACKAGES),
        allow("states:ListExecutions", on=On.STATE_MACHINE),
        allow("states:StopExecution", on=On.EXECUTIONS),
        allow("scheduler:ListSchedules", on=On.ANY),
        allow("scheduler:DeleteSchedule", on=On.SCHEDULES),
        allow("sagemaker:ListTransformJobs", on=On.ANY),
        allow("sagemaker:ListTags", on=On.TRANSFORM_JOB),
        allow("sagemaker:StopTransformJob", on=On.TRANSFORM_JOB, when=If.TAGGED),
        _LIST_SAGEMAKER,
        # Tags only: the List calls return the names and ARNs it needs.
        allow("sagemaker:ListTags", on=_LEFT_BEHIND),
        _DELETE_LEFT_BEHIND,
    ),
    "CleanupComplete": (
        _LIST_SAGEMAKER,
        allow("sagemaker:ListTags", on=_LEFT_BEHIND),
        _DELETE_LEFT_BEHIND,
    ),
    # -- service roles (SERVICE_ROLES) --
    "SageMakerExecution": (
        *objects(read=True, write=True),
        allow("s3:ListBucket", on=On.BUCKET, when={"StringLike": {"s3:prefix": ["runs/*"]}}),
        allow("s3:GetBucketLocation", on=On.BUCKET),
        # No read of the tutorial object: Convert copies it into runs/ first.
        allow(
            "ecr:BatchCheckLayerAvailability",
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
            on=On.IMAGE_REPOSITORY,
        ),
        allow("ecr:GetAuthorizationToken", on=On.ANY),
        allow(
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:DescribeLogStreams",
            "logs:PutLogEvents",
            on=On.SAGEMAKER_LOG_GROUPS,
        ),
        allow(
            "cloudwatch:PutMetricData",
            on=On.ANY,
            when={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
        ),
        # Model artifacts (OutputDataConfig.KmsKeyId) and training volumes (VolumeKmsKeyId).
        *KEY_FOR_SAGEMAKER_CALLS,
        allow(*KMS_SAGEMAKER_OUTPUT, on=On.KEY),
        # AutoRollbackConfiguration: SageMaker reads the alarms' state as the
        # endpoint's execution role.
        allow("cloudwatch:DescribeAlarms", on=On.ROLLBACK_ALARMS),
    ),
    "EndpointTtlScheduler": (allow("lambda:InvokeFunction", on=On.ENDPOINT_TTL_FUNCTION),),
    # The topic uses our key: the state machine must encrypt to publish.
    "StateMachine": (allow(*KMS_ENCRYPT_DECRYPT, on=On.KEY),),
    "RetrainingSchedule": (allow("states:StartExecution", on=On.STATE_MACHINE),),
}


# -- the applier --------------------------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    """What :class:`On` and :class:`If` stand for in one stack."""

    #: Every :class:`On`: its ARNs (:attr:`On.KEY`: none without enable_kms).
    resources: Mapping[On, tuple[str, ...]]
    #: Value of the stack tag (``mnist-ll:stack``).
    stack_tag: str
    #: cdk.json ``allowed_instance_types``.
    instance_types: tuple[str, ...]

    def __post_init__(self) -> None:
        missing = sorted(set(On) - set(self.resources))
        if missing:
            raise ValueError(f"no ARNs for {missing}")

    def condition(self, condition: Condition) -> Mapping[str, Mapping[str, Any]]:
        if condition is If.TAGGED:
            return {"StringEquals": {f"aws:ResourceTag/{STACK_TAG_KEY}": self.stack_tag}}
        if condition is If.REQUEST_TAGGED:
            return {"StringEquals": {f"aws:RequestTag/{STACK_TAG_KEY}": self.stack_tag}}
        if condition is If.ALLOWED_INSTANCE_TYPES:
            return {
                "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": list(self.instance_types)}
            }
        assert not isinstance(condition, If), condition
        return condition

    def statement(self, grant: Grant) -> iam.PolicyStatement | None:
        """The grant as a policy statement; None if its resources do not exist."""
        resources = [arn for on in grant.resources for arn in self.resources[on]]
        if not resources:
            return None
        conditions: dict[str, dict[str, Any]] = {}
        for condition in grant.conditions:
            for operator, values in self.condition(condition).items():
                conditions.setdefault(operator, {}).update(values)
        return iam.PolicyStatement(
            actions=list(grant.actions), resources=resources, conditions=conditions or None
        )


def apply_grants(scope: Construct, roles: Mapping[str, iam.IRole], targets: Targets) -> None:
    """Grant each role in ``roles`` its table of :data:`GRANTS`, statement by statement.

    A grant with ``own_policy`` becomes an :class:`iam.Policy` of its own,
    ``<role name><own_policy>`` in ``scope``.
    """
    unknown = sorted(set(roles) - set(GRANTS))
    if unknown:
        raise ValueError(f"no table of grants for {unknown}")
    for name, role in roles.items():
        for grant in GRANTS[name]:
            statement = targets.statement(grant)
            if statement is None:
                continue
            if grant.own_policy is None:
                role.add_to_principal_policy(statement)
            else:
                iam.Policy(scope, f"{name}{grant.own_policy}", roles=[role], statements=[statement])
