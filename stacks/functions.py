"""The pipeline's Lambdas: what differs between them (:data:`FUNCTION_SPECS`),
and one of them as a construct: its own role, its own log group, tracing on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

#: The newest Python runtime this aws-cdk-lib knows.
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
SERVICE_NAME = "mnist-ll-pipeline"


@dataclass(frozen=True, kw_only=True)
class FunctionSpec:
    """What differs between the pipeline's Lambdas."""

    module: str
    description: str
    memory_mb: int = 256
    timeout_seconds: int = 60
    ephemeral_storage_mb: int = 512

    @property
    def handler(self) -> str:
        return f"lambdas.{self.module}.handler"


class PipelineFunction(Construct):
    """A Python arm64 Lambda from the shared asset, with least-privilege role.

    The role starts with nothing but write access to the function's own log
    group and X-Ray; the stack grants the rest.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        code: lambda_.Code,
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"mnist-ll {spec.module} Lambda",
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=removal_policy
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=code,
            handler=spec.handler,
            role=self.role,
            memory_size=spec.memory_mb,
            ephemeral_storage_size=Size.mebibytes(spec.ephemeral_storage_mb),
            timeout=Duration.seconds(spec.timeout_seconds),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            environment={**environment, "POWERTOOLS_SERVICE_NAME": SERVICE_NAME},
        )
        self.log_group.grant_write(self.role)


FUNCTION_SPECS: Mapping[str, FunctionSpec] = {
    "ValidateInput": FunctionSpec(
        module="validate_input",
        description="Resolve and validate the execution input into a run spec",
        timeout_seconds=30,
    ),
    "Convert": FunctionSpec(
        module="convert",
        description="Load the pickled MNIST dataset safely and write recordIO-protobuf",
        memory_mb=3008,
        timeout_seconds=600,
        ephemeral_storage_mb=2048,
    ),
    "ConvertShard": FunctionSpec(
        module="convert_shard",
        description="One Distributed Map child: validate one shard, write recordIO objects",
        memory_mb=3008,
        timeout_seconds=900,
    ),
    "FinalizeDataset": FunctionSpec(
        module="finalize_dataset",
        description="Check every shard was converted, then write the manifest",
        timeout_seconds=300,
    ),
    "StartTuning": FunctionSpec(
        module="start_tuning", description="Start the hyperparameter tuning job"
    ),
    "DescribeTuning": FunctionSpec(
        module="describe_tuning", description="Poll the tuning job and apply the quality gate"
    ),
    "Deploy": FunctionSpec(
        module="deploy",
        description="Create the model and endpoint config; create or update the endpoint",
        timeout_seconds=120,
    ),
    "DescribeEndpoint": FunctionSpec(
        module="describe_endpoint",
        description="Poll the endpoint; retire superseded configs and models",
        timeout_seconds=120,
    ),
    "Evaluate": FunctionSpec(
        module="evaluate",
        description="Score the test set against the endpoint and write the report",
        memory_mb=2048,
        timeout_seconds=600,
        ephemeral_storage_mb=1024,
    ),
    "ScheduleEndpointTtl": FunctionSpec(
        module="schedule_ttl", description="Create or move the endpoint's deletion schedule"
    ),
    "StartTransform": FunctionSpec(
        module="start_transform",
        description="Endpoint mode none: create the model and the Batch Transform job",
    ),
    "DescribeTransform": FunctionSpec(
        module="describe_transform", description="Poll the Batch Transform job"
    ),
    "RegisterModel": FunctionSpec(
        module="register_model",
        description="Register the tuned model as a version of the Model Package Group",
    ),
    "LoadModelPackage": FunctionSpec(
        module="load_model_package",
        description="Input model_package_arn: load an Approved version to deploy (rollback)",
    ),
    "WaitForApproval": FunctionSpec(
        module="await_approval",
        description="Manual approval: keep the task token until the version is decided",
    ),
    "ApprovalDecided": FunctionSpec(
        module="approval_decided",
        description="A version was approved or rejected: release the waiting execution",
    ),
    "EndpointTtl": FunctionSpec(
        module="endpoint_ttl",
        description="At the endpoint's TTL: delete the endpoint, its config and model",
        timeout_seconds=120,
    ),
    "ExecutionEnded": FunctionSpec(
        module="execution_ended",
        description="An execution failed, timed out or was stopped: stop its jobs, notify",
        timeout_seconds=120,
    ),
    "Cleanup": FunctionSpec(
        module="cleanup",
        description="On stack delete: stop executions and jobs, remove schedules and resources",
        timeout_seconds=600,
    ),
    "CleanupComplete": FunctionSpec(
        module="cleanup_complete",
        description="On stack delete: wait for endpoints to be deletable, then delete them",
        timeout_seconds=300,
    ),
}


#: Invoked asynchronously (by Scheduler or EventBridge): what Lambda's two
#: retries cannot fix goes to the topic (their on-failure destination).
ASYNC_FUNCTIONS: tuple[str, ...] = ("EndpointTtl", "ExecutionEnded", "ApprovalDecided")
