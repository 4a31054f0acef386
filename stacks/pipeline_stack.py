"""The stack: wires the constructs together and grants every permission."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from aws_cdk import Aws, CfnOutput, Duration, Fn, RemovalPolicy, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from pipeline_core import run_metrics
from pipeline_core.config import CONFIG_ENV
from pipeline_core.names import default_endpoint_name, model_package_group_name
from stacks.bundling import lambda_code
from stacks.cleanup import ExecutionCleanup
from stacks.dashboard import PipelineDashboard
from stacks.functions import RUNTIME, FunctionSpec, PipelineFunction
from stacks.image_uris import LinearLearnerImage
from stacks.leases import EndpointLeases
from stacks.lifecycle import ExecutionEndRule, FailureDestination, SchedulerRole
from stacks.nag import acknowledge_findings
from stacks.notifications import NotificationTopic
from stacks.regions import check_instance_types
from stacks.registry import EndpointAlarms, ModelRegistry
from stacks.sagemaker_role import SageMakerExecutionRole
from stacks.schedule import RetrainingScheduleConstruct
from stacks.settings import LOG_RETENTION_DAYS, StackSettings
from stacks.state_machine import BusyRetry, PipelineFunctions, PipelineStateMachine
from stacks.storage import DataStorage

#: Tag key on everything an execution creates; value = :attr:`PipelineStack.stack_tag`.
STACK_TAG_KEY = "mnist-ll:stack"

#: What SSE-KMS reads and writes of the Lambdas and the state machine need
#: (spelled out: CDK's grant_encrypt_decrypt uses wildcard actions such as
#: GenerateDataKey*): envelope encryption never calls kms:Encrypt for them.
KMS_ENCRYPT_DECRYPT: tuple[str, ...] = ("kms:Decrypt", "kms:GenerateDataKey")
#: The SageMaker execution role also needs kms:Encrypt: the API reference of
#: OutputDataConfig.KmsKeyId requires it of the role the job runs as.
KMS_SAGEMAKER_OUTPUT: tuple[str, ...] = ("kms:Encrypt",)

#: aws_logs.RetentionDays in the order of the day counts they stand for.
_RETENTION = dict(zip(sorted(LOG_RETENTION_DAYS), list(logs.RetentionDays)[:-1], strict=True))

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


class PipelineStack(Stack):
    """MNIST Linear Learner pipeline: bucket, Lambdas, state machine, topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StackSettings,
        project_root: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, stack_name=settings.stack_name, **kwargs)
        self.settings = settings
        config = settings.pipeline
        # A concrete region known not to offer C4/M4 fails here, naming the fix.
        check_instance_types(self.region, config)
        removal = RemovalPolicy.DESTROY if settings.destroy_on_delete else RemovalPolicy.RETAIN
        retention = _RETENTION[settings.log_retention_days]
        #: Value of the ``mnist-ll:stack`` tag: the stack name is unique per account/region.
        self.stack_tag = settings.stack_name
        #: Each stack its own default endpoint (two stacks never share one).
        self.endpoint_name = default_endpoint_name(config.name_prefix, settings.stack_name)
        #: The stack's own registry: two stacks never share a Model Package Group.
        self.model_package_group = model_package_group_name(config.name_prefix, settings.stack_name)
        #: The UUID of the stack id: new on every create of the stack, so every
        #: name a run derives differs between stacks and between a destroyed
        #: stack and its redeployment (pipeline_core.names).
        self.salt = Fn.select(2, Fn.split("/", Aws.STACK_ID))
        Tags.of(self).add("project", "mnist-linear-learner")

        self.key: kms.Key | None = None
        if settings.enable_kms:
            self.key = kms.Key(
                self,
                "Key",
                description="MNIST Linear Learner: data bucket, training volumes, endpoint",
                enable_key_rotation=True,
                removal_policy=removal,
            )
        sns_key: kms.IKey = self.key or kms.Alias.from_alias_name(
            self, "SnsManagedKey", "alias/aws/sns"
        )

        self.storage = DataStorage(
            self,
            "Storage",
            removal_policy=removal,
            auto_delete_objects=settings.auto_delete_objects,
            encryption_key=self.key,
        )
        self.notifications = NotificationTopic(
            self, "Notifications", master_key=sns_key, email=settings.notification_email
        )
        self.image = LinearLearnerImage(self, "LinearLearnerImage")
        self.leases = EndpointLeases(self, "EndpointLeases")
        self.sagemaker_role = SageMakerExecutionRole(
            self, "SageMakerExecution", description="Assumed by SageMaker for mnist-ll jobs"
        ).role

        environment = {
            CONFIG_ENV: config.to_json(),
            "DATA_BUCKET": self.storage.bucket.bucket_name,
            "SAGEMAKER_ROLE_ARN": self.sagemaker_role.role_arn,
            "LINEAR_LEARNER_IMAGE": self.image.image_uri,
            "DEFAULT_ENDPOINT_NAME": self.endpoint_name,
            "MODEL_PACKAGE_GROUP": self.model_package_group,
            "STACK_TAG": self.stack_tag,
            "DEPLOYMENT_SALT": self.salt,
            "LOCK_TABLE": self.leases.table.table_name,
        }
        if self.key is not None:
            environment["KMS_KEY_ARN"] = self.key.key_arn

        code = lambda_code(root=project_root, runtime=RUNTIME)
        self.functions = {
            name: PipelineFunction(
                self,
                name,
                spec=spec,
                code=code,
                environment=environment,
                log_retention=retention,
                removal_policy=removal,
            )
            for name, spec in FUNCTION_SPECS.items()
        }
        fn = {name: f.function for name, f in self.functions.items()}

        self.pipeline = PipelineStateMachine(
            self,
            "Pipeline",
            functions=PipelineFunctions(
                validate_input=fn["ValidateInput"],
                convert=fn["Convert"],
                start_tuning=fn["StartTuning"],
                describe_tuning=fn["DescribeTuning"],
                deploy=fn["Deploy"],
                describe_endpoint=fn["DescribeEndpoint"],
                evaluate=fn["Evaluate"],
                convert_shard=fn["ConvertShard"],
                finalize_dataset=fn["FinalizeDataset"],
                schedule_ttl=fn["ScheduleEndpointTtl"],
                start_transform=fn["StartTransform"],
                describe_transform=fn["DescribeTransform"],
                register_model=fn["RegisterModel"],
                load_model_package=fn["LoadModelPackage"],
                await_approval=fn["WaitForApproval"],
            ),
            data_bucket=self.storage.bucket,
            map_max_concurrency=config.map_max_concurrency,
            topic=self.notifications.topic,
            # Unique per create of the stack: a retained log group never blocks a redeploy.
            log_group_name=Fn.join(
                "", [f"/aws/vendedlogs/states/{settings.stack_name}-pipeline-", self.salt]
            ),
            log_retention=retention,
            removal_policy=removal,
            timeout=Duration.hours(settings.execution_timeout_hours),
            approval_timeout=Duration.minutes(config.approval_timeout_minutes),
            endpoint_busy_retry=(
                BusyRetry(
                    interval_seconds=config.endpoint_busy_interval_seconds,
                    max_attempts=config.endpoint_busy_retries,
                )
                if config.endpoint_busy == "wait"
                else None
            ),
        )
        self.registry = ModelRegistry(
            self,
            "ModelRegistry",
            group_name=self.model_package_group,
            approval_handler=fn["ApprovalDecided"],
            removal_policy=removal,
            tags={STACK_TAG_KEY: self.stack_tag},
        )
        self.endpoint_alarms = EndpointAlarms(
            self, "EndpointAlarms", endpoint_name=self.endpoint_name, rollout=config.rollout
        )
        self.dashboard = PipelineDashboard(
            self,
            "Dashboard",
            dashboard_name=f"{settings.stack_name}-pipeline",
            state_machine=self.pipeline.state_machine,
            stack_tag=self.stack_tag,
            endpoint=self.endpoint_alarms,
        )
        self.scheduler_role = SchedulerRole(self, "EndpointTtlScheduler").role
        self.execution_end = ExecutionEndRule(
            self,
            "ExecutionEnd",
            state_machine=self.pipeline.state_machine,
            handler=fn["ExecutionEnded"],
        )
        self._lifecycle_environment(fn)
        self.failure_destinations = {
            name: FailureDestination(
                self,
                f"{name}OnFailure",
                function=fn[name],
                topic=self.notifications.topic,
                grants=self.functions[name].role,
            )
            for name in ASYNC_FUNCTIONS
        }
        self.cleanup = ExecutionCleanup(
            self,
            "ExecutionCleanup",
            on_event=fn["Cleanup"],
            is_complete=fn["CleanupComplete"],
            stack_tag=self.stack_tag,
            log_retention=retention,
            removal_policy=removal,
        )
        # Deleted first: nothing an execution could still be using is gone yet.
        self.cleanup.resource.node.add_dependency(
            self.pipeline, self.sagemaker_role, self.storage, *self.functions.values()
        )
        # Before the group: a group with versions cannot be deleted.
        self.cleanup.resource.node.add_dependency(self.registry.group)
        self.retraining: RetrainingScheduleConstruct | None = None
        if settings.schedule is not None:
            self.retraining = RetrainingScheduleConstruct(
                self,
                "Retraining",
                schedule=settings.schedule,
                state_machine=self.pipeline.state_machine,
                name=f"{settings.stack_name}-retraining",
                # Deleted before the cleanup runs: no scheduled start after it.
                delete_before=self.cleanup.resource,
            )

        self._grant_sagemaker_role()
        self._grant_functions()
        self._outputs()
        acknowledge_findings(self)

    def _lifecycle_environment(self, fn: Mapping[str, Any]) -> None:
        """Variables only some functions need (set after all exist: no cycles)."""
        topic = self.notifications.topic.topic_arn
        ttl_arn = fn["EndpointTtl"].function_arn
        extra: dict[str, dict[str, str]] = {
            "ScheduleEndpointTtl": {
                "TTL_FUNCTION_ARN": ttl_arn,
                "SCHEDULER_ROLE_ARN": self.scheduler_role.role_arn,
            },
            # A busy endpoint's TTL re-arms itself: its own ARN comes from the
            # invocation's context (naming itself here would be a cycle).
            "EndpointTtl": {"TOPIC_ARN": topic, "SCHEDULER_ROLE_ARN": self.scheduler_role.role_arn},
            # A run that deployed but never scheduled its TTL gets one.
            "ExecutionEnded": {
                "TOPIC_ARN": topic,
                "TTL_FUNCTION_ARN": ttl_arn,
                "SCHEDULER_ROLE_ARN": self.scheduler_role.role_arn,
            },
            "Cleanup": {
                "STATE_MACHINE_ARN": self.pipeline.state_machine.state_machine_arn,
                "TTL_FUNCTION_ARN": ttl_arn,
                # Versions are deleted with the group, unless the stack retains it.
                "MODEL_REGISTRY_RETAINED": str(not self.settings.destroy_on_delete).lower(),
            },
        }
        for name, variables in extra.items():
            for key, value in variables.items():
                fn[name].add_environment(key, value)

    # -- ARNs --------------------------------------------------------------------

    def arn_prefix(self, service: str) -> str:
        """``arn:<partition>:<service>:<region>:<account>`` of this stack.

        The stack's own values, as CDK's grants use them: pseudo parameters
        for an environment-agnostic stack, literals when ``env`` names the
        account or region (stacks.nag renders the finding ids from the same).
        """
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}"

    def sagemaker_arn(self, resource: str) -> str:
        """ARN pattern of SageMaker ``resource``s named ``<name_prefix>-*``.

        Names are lower-cased, as SageMaker writes them in ARNs.
        """
        prefix = self.settings.pipeline.name_prefix.lower()
        return f"{self.arn_prefix('sagemaker')}:{resource}/{prefix}-*"

    def tutorial_object_arn(self) -> str:
        """The public tutorial dataset for this stack's region."""
        template = self.settings.pipeline.source_template
        parsed = urlparse(template.replace("{region}", "REGION"))
        bucket = parsed.netloc.replace("REGION", Aws.REGION)
        key = parsed.path.lstrip("/").replace("REGION", Aws.REGION)
        return f"arn:{Aws.PARTITION}:s3:::{bucket}/{key}"

    def instance_types_condition(self) -> dict[str, Any]:
        """Create calls that launch instances may only ask for the allowlist
        (the same list ValidateInput enforces: cdk.json allowed_instance_types)."""
        return {
            "ForAllValues:StringEquals": {
                "sagemaker:InstanceTypes": list(self.settings.pipeline.allowed_instance_types)
            }
        }

    def schedule_arn(self) -> str:
        """TTL schedules: the default group, named after the endpoint (``<prefix>-*``)."""
        prefix = self.settings.pipeline.name_prefix
        return f"{self.arn_prefix('scheduler')}:schedule/default/{prefix}-*"

    def model_package_arns(self) -> tuple[str, str]:
        """(the group, its versions)."""
        group = self.model_package_group.lower()
        base = self.arn_prefix("sagemaker")
        return f"{base}:model-package-group/{group}", f"{base}:model-package/{group}/*"

    def _tag_condition(self) -> dict[str, Any]:
        """The resource carries this stack's tag."""
        return {"StringEquals": {f"aws:ResourceTag/{STACK_TAG_KEY}": self.stack_tag}}

    def _request_tag_condition(self) -> dict[str, Any]:
        """The Create request tags the new resource with this stack."""
        return {"StringEquals": {f"aws:RequestTag/{STACK_TAG_KEY}": self.stack_tag}}

    # -- grants ------------------------------------------------------------------

    def _allow(
        self,
        role: iam.IRole,
        actions: Sequence[str],
        resources: Sequence[str],
        conditions: Mapping[str, Any] | None = None,
    ) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(actions),
                resources=list(resources),
                conditions=dict(conditions) if conditions else None,
            )
        )

    def _grant_schedule_ttl(self, role: iam.IRole, actions: Sequence[str]) -> None:
        """Endpoint TTL schedules (``<prefix>-*`` in the default group), invoking
        EndpointTtl as the scheduler role (passed to Scheduler only)."""
        self._allow(role, actions, [self.schedule_arn()])
        self._allow(
            role,
            ["iam:PassRole"],
            [self.scheduler_role.role_arn],
            {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
        )

    def _grant_pass_role(self, role: iam.IRole) -> None:
        self._allow(
            role,
            ["iam:PassRole"],
            [self.sagemaker_role.role_arn],
            {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )

    def _grant_key_for_sagemaker_calls(self, role: iam.IRole) -> None:
        """Create* calls naming our key let SageMaker create grants on it
        (volumes of training jobs and endpoints), and only for AWS resources."""
        if self.key is None:
            return
        self._allow(role, ["kms:DescribeKey"], [self.key.key_arn])
        self._allow(
            role,
            ["kms:CreateGrant"],
            [self.key.key_arn],
            {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        )

    def _grant_key_use(self, role: iam.IRole, actions: Sequence[str]) -> None:
        if self.key is not None:
            self._allow(role, actions, [self.key.key_arn])

    def _grant_publish(self, role: iam.IRole) -> None:
        """sns:Publish on the topic (and our key, if the topic uses it)."""
        self._allow(role, ["sns:Publish"], [self.notifications.topic.topic_arn])
        self._grant_key_use(role, KMS_ENCRYPT_DECRYPT)

    def _grant_objects(self, role: iam.IRole, *, read: bool, write: bool) -> None:
        """Object access under ``runs/`` only."""
        actions = (["s3:GetObject"] if read else []) + (["s3:PutObject"] if write else [])
        self._allow(role, actions, [self.storage.runs_arn()])
        self._grant_key_use(role, KMS_ENCRYPT_DECRYPT if write else ("kms:Decrypt",))

    def _grant_sagemaker_role(self) -> None:
        role = self.sagemaker_role
        bucket = self.storage.bucket
        self._grant_objects(role, read=True, write=True)
        self._allow(
            role,
            ["s3:ListBucket"],
            [bucket.bucket_arn],
            {"StringLike": {"s3:prefix": ["runs/*"]}},
        )
        self._allow(role, ["s3:GetBucketLocation"], [bucket.bucket_arn])
        # No read of the tutorial object: Convert copies it into runs/ first.
        self._allow(
            role,
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            [self.image.repository_arn],
        )
        self._allow(role, ["ecr:GetAuthorizationToken"], ["*"])
        self._allow(
            role,
            [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
            ],
            [self.sagemaker_log_groups_arn()],
        )
        self._allow(
            role,
            ["cloudwatch:PutMetricData"],
            ["*"],
            {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
        )
        # Model artifacts (OutputDataConfig.KmsKeyId) and training volumes (VolumeKmsKeyId).
        self._grant_key_for_sagemaker_calls(role)
        self._grant_key_use(role, KMS_SAGEMAKER_OUTPUT)

    def executions_arn(self) -> str:
        """Executions of this stack's state machine."""
        name = self.pipeline.state_machine.state_machine_name
        return f"{self.arn_prefix('states')}:execution:{name}:*"

    def sagemaker_log_groups_arn(self) -> str:
        """Log groups SageMaker names itself (/aws/sagemaker/TrainingJobs, .../Endpoints/*)."""
        return f"{self.arn_prefix('logs')}:log-group:/aws/sagemaker/*"

    def _grant_functions(self) -> None:
        roles = {name: f.role for name, f in self.functions.items()}
        bucket = self.storage.bucket
        tuning_job = self.sagemaker_arn("hyper-parameter-tuning-job")
        training_job = self.sagemaker_arn("training-job")
        model = self.sagemaker_arn("model")
        endpoint_config = self.sagemaker_arn("endpoint-config")
        endpoint = self.sagemaker_arn("endpoint")

        # ValidateInput is pure: logs and traces only.

        convert = roles["Convert"]
        self._allow(convert, ["s3:GetObject"], [self.tutorial_object_arn()])
        # Any key of our own bucket may be a source; writes stay under runs/.
        self._allow(convert, ["s3:GetObject"], [bucket.arn_for_objects("*")])
        self._grant_objects(convert, read=True, write=True)
        # A reconversion first removes the old manifest (no stale data marked usable).
        self._allow(convert, ["s3:DeleteObject"], [self.storage.manifests_arn()])
        # Lets a missing source object read as 404 (SourceNotFound), not 403.
        self._allow(convert, ["s3:ListBucket"], [bucket.bucket_arn])

        shard = roles["ConvertShard"]
        # A shard may be any key of our bucket (like a pickle source); writes under runs/.
        self._allow(shard, ["s3:GetObject"], [bucket.arn_for_objects("*")])
        self._grant_objects(shard, read=True, write=True)
        # Lets a missing shard read as 404 (SourceNotFound), not 403.
        self._allow(shard, ["s3:ListBucket"], [bucket.bucket_arn])

        finalize = roles["FinalizeDataset"]
        # Lists the source prefix and reads the receipts under runs/; writes the manifest.
        self._allow(finalize, ["s3:ListBucket"], [bucket.bucket_arn])
        self._grant_objects(finalize, read=True, write=True)

        transform_job = self.sagemaker_arn("transform-job")
        start = roles["StartTuning"]
        self._allow(
            start,
            ["sagemaker:CreateHyperParameterTuningJob"],
            [tuning_job],
            {**self._request_tag_condition(), **self.instance_types_condition()},
        )
        # An existing job of that name is adopted only if its tags are this run's.
        self._allow(
            start,
            ["sagemaker:DescribeHyperParameterTuningJob", "sagemaker:ListTags"],
            [tuning_job],
        )
        self._allow(
            start,
            ["sagemaker:AddTags"],
            [tuning_job, training_job],
            self._request_tag_condition(),
        )
        self._grant_pass_role(start)
        # No S3: SageMaker reads the channels and writes artifacts as its own role.
        self._grant_key_for_sagemaker_calls(start)

        describe_tuning = roles["DescribeTuning"]
        self._allow(describe_tuning, ["sagemaker:DescribeHyperParameterTuningJob"], [tuning_job])
        self._allow(describe_tuning, ["sagemaker:DescribeTrainingJob"], [training_job])
        # Billable seconds of every training job once the tuning job ended (cost block).
        self._allow(
            describe_tuning,
            ["sagemaker:ListTrainingJobsForHyperParameterTuningJob"],
            [tuning_job],
        )

        # ValidateInput: the run's endpoint and its config, to refuse a run of the
        # other kind (instance-based vs serverless) before anything costs money.
        self._allow(
            roles["ValidateInput"],
            ["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig"],
            [endpoint, endpoint_config],
        )

        deploy = roles["Deploy"]
        # The model artifacts come in $.tuning.best: nothing of the tuning job is read.
        # Creates only with this stack's tag in the request; updates only of
        # endpoints (and to configs) that carry it.
        self._allow(deploy, ["sagemaker:CreateModel"], [model], self._request_tag_condition())
        self._allow(
            deploy,
            ["sagemaker:CreateEndpointConfig"],
            [endpoint_config],
            {**self._request_tag_condition(), **self.instance_types_condition()},
        )
        self._allow(
            deploy,
            ["sagemaker:CreateEndpoint"],
            [endpoint, endpoint_config],
            self._request_tag_condition(),
        )
        self._allow(
            deploy,
            ["sagemaker:UpdateEndpoint"],
            [endpoint, endpoint_config],
            self._tag_condition(),
        )
        # ListTags: an existing endpoint is only touched if this stack tagged it,
        # an existing model/config (or endpoint) only adopted if this run created it.
        self._allow(
            deploy,
            [
                "sagemaker:DescribeEndpoint",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:DescribeModel",
                "sagemaker:ListTags",
            ],
            [endpoint, endpoint_config, model],
        )
        self._allow(
            deploy,
            ["sagemaker:AddTags"],
            [model, endpoint_config, endpoint],
            self._request_tag_condition(),
        )
        # The endpoint's lease: one deploy at a time (released at once on failure).
        self._allow(
            deploy, ["dynamodb:PutItem", "dynamodb:DeleteItem"], [self.leases.table.table_arn]
        )
        # A Failed endpoint can only be deleted; only ever one this stack tagged.
        self._allow(deploy, ["sagemaker:DeleteEndpoint"], [endpoint], self._tag_condition())
        self._grant_pass_role(deploy)
        self._grant_key_for_sagemaker_calls(deploy)

        describe_endpoint = roles["DescribeEndpoint"]
        self._allow(describe_endpoint, ["sagemaker:DescribeEndpoint"], [endpoint])
        # A failed deployment frees the endpoint's lease.
        self._allow(describe_endpoint, ["dynamodb:DeleteItem"], [self.leases.table.table_arn])
        # Retire the config this run superseded (and its model), or discard its
        # own rolled-back ones: named resources only, no listing.
        self._allow(
            describe_endpoint,
            ["sagemaker:DescribeEndpointConfig", "sagemaker:ListTags"],
            [endpoint_config],
        )
        self._allow(
            describe_endpoint,
            ["sagemaker:DeleteEndpointConfig", "sagemaker:DeleteModel"],
            [endpoint_config, model],
            self._tag_condition(),
        )

        evaluate = roles["Evaluate"]
        self._allow(evaluate, ["sagemaker:InvokeEndpoint"], [endpoint], self._tag_condition())
        # Done with the endpoint: release its lease.
        self._allow(evaluate, ["dynamodb:DeleteItem"], [self.leases.table.table_arn])
        self._grant_objects(evaluate, read=True, write=True)

        self._grant_schedule_ttl(
            roles["ScheduleEndpointTtl"],
            ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"],
        )
        self._allow(
            self.scheduler_role,
            ["lambda:InvokeFunction"],
            [self.functions["EndpointTtl"].function.function_arn],
        )

        start_transform = roles["StartTransform"]
        self._allow(
            start_transform, ["sagemaker:CreateModel"], [model], self._request_tag_condition()
        )
        self._allow(
            start_transform,
            ["sagemaker:CreateTransformJob"],
            [transform_job, model],
            {**self._request_tag_condition(), **self.instance_types_condition()},
        )
        self._allow(
            start_transform,
            ["sagemaker:AddTags"],
            [model, transform_job],
            self._request_tag_condition(),
        )
        # A retry adopts the model / job it finds only if their tags are this run's.
        self._allow(
            start_transform,
            ["sagemaker:DescribeModel", "sagemaker:DescribeTransformJob", "sagemaker:ListTags"],
            [model, transform_job],
        )
        self._grant_pass_role(start_transform)
        self._grant_key_for_sagemaker_calls(start_transform)
        self._allow(roles["DescribeTransform"], ["sagemaker:DescribeTransformJob"], [transform_job])
        # The job has ended: delete its model (of this stack only).
        self._allow(
            roles["DescribeTransform"], ["sagemaker:DeleteModel"], [model], self._tag_condition()
        )

        ttl = roles["EndpointTtl"]
        self._allow(ttl, ["sagemaker:DescribeEndpoint", "sagemaker:ListTags"], [endpoint])
        self._allow(ttl, ["sagemaker:DescribeEndpointConfig"], [endpoint_config])
        self._allow(
            ttl,
            ["sagemaker:DeleteEndpoint", "sagemaker:DeleteEndpointConfig", "sagemaker:DeleteModel"],
            [endpoint, endpoint_config, model],
            self._tag_condition(),
        )
        # A busy endpoint: a new one-time schedule; a re-armed one first looks
        # for a newer TTL schedule of the endpoint (a later run's).
        self._grant_schedule_ttl(ttl, ["scheduler:CreateSchedule", "scheduler:GetSchedule"])
        self._grant_publish(ttl)

        ended = roles["ExecutionEnded"]
        self._allow(
            ended,
            ["sagemaker:DescribeHyperParameterTuningJob", "sagemaker:DescribeTransformJob"],
            [tuning_job, transform_job],
        )
        self._allow(
            ended,
            ["sagemaker:StopHyperParameterTuningJob", "sagemaker:StopTransformJob"],
            [tuning_job, transform_job],
            self._tag_condition(),
        )
        # Whatever endpoint lease the run still holds is given back at once.
        self._allow(ended, ["dynamodb:Scan", "dynamodb:DeleteItem"], [self.leases.table.table_arn])
        # A run that deployed but never scheduled its TTL: is the endpoint this
        # run's and this stack's? Then its TTL schedule (unless one exists).
        self._allow(ended, ["sagemaker:DescribeEndpoint", "sagemaker:ListTags"], [endpoint])
        self._grant_schedule_ttl(ended, ["scheduler:CreateSchedule"])
        self._grant_publish(ended)
        # The on-failure destination publishes as the function's role.
        self._grant_publish(roles["ApprovalDecided"])

        complete = roles["CleanupComplete"]
        self._allow(
            complete,
            [
                "sagemaker:ListEndpointConfigs",
                "sagemaker:ListEndpoints",
                "sagemaker:ListHyperParameterTuningJobs",
                "sagemaker:ListModels",
            ],
            ["*"],
        )
        self._allow(
            complete, ["sagemaker:ListTags"], [endpoint, endpoint_config, model, tuning_job]
        )
        self._allow(
            complete,
            [
                "sagemaker:DeleteEndpoint",
                "sagemaker:DeleteEndpointConfig",
                "sagemaker:DeleteModel",
                "sagemaker:StopHyperParameterTuningJob",
            ],
            [endpoint, endpoint_config, model, tuning_job],
            self._tag_condition(),
        )

        cleanup = roles["Cleanup"]
        # The registry's versions go with the group (removal policy destroy).
        _group, versions = self.model_package_arns()
        self._allow(cleanup, ["sagemaker:ListModelPackages"], ["*"])
        self._allow(cleanup, ["sagemaker:DeleteModelPackage"], [versions])
        state_machine = self.pipeline.state_machine
        self._allow(cleanup, ["states:ListExecutions"], [state_machine.state_machine_arn])
        self._allow(cleanup, ["states:StopExecution"], [self.executions_arn()])
        self._allow(cleanup, ["scheduler:ListSchedules"], ["*"])
        self._allow(cleanup, ["scheduler:DeleteSchedule"], [self.schedule_arn()])
        self._allow(cleanup, ["sagemaker:ListTransformJobs"], ["*"])
        self._allow(cleanup, ["sagemaker:ListTags"], [transform_job])
        self._allow(cleanup, ["sagemaker:StopTransformJob"], [transform_job], self._tag_condition())
        self._allow(
            cleanup,
            [
                "sagemaker:ListEndpointConfigs",
                "sagemaker:ListEndpoints",
                "sagemaker:ListHyperParameterTuningJobs",
                "sagemaker:ListModels",
            ],
            ["*"],
        )
        # Tags only: the List calls return the names and ARNs it needs.
        self._allow(cleanup, ["sagemaker:ListTags"], [endpoint, endpoint_config, model, tuning_job])
        self._allow(
            cleanup,
            [
                "sagemaker:DeleteEndpoint",
                "sagemaker:DeleteEndpointConfig",
                "sagemaker:DeleteModel",
                "sagemaker:StopHyperParameterTuningJob",
            ],
            [endpoint, endpoint_config, model, tuning_job],
            self._tag_condition(),
        )

        self._grant_registry(roles)

        # The topic uses our key: the state machine must encrypt to publish.
        self._grant_key_use(self.pipeline.state_machine.role, KMS_ENCRYPT_DECRYPT)

    def _grant_registry(self, roles: Mapping[str, iam.IRole]) -> None:
        group, versions = self.model_package_arns()
        # A version of the stack's own group only. The request carries no Tags
        # (the API refuses them with a group: a version uses the group's, which
        # carries the stack tag), so neither aws:RequestTag nor AddTags applies.
        self._allow(roles["RegisterModel"], ["sagemaker:CreateModelPackage"], [group, versions])
        load = roles["LoadModelPackage"]
        self._allow(load, ["sagemaker:DescribeModelPackage"], [versions])
        # The version's test data (its run's test split or manifest) must still exist;
        # ListBucket lets a missing object read as 404, not 403.
        self._grant_objects(load, read=True, write=False)
        self._allow(load, ["s3:ListBucket"], [self.storage.bucket.bucket_arn])
        state_machine = self.pipeline.state_machine.state_machine_arn
        for name in ("WaitForApproval", "ApprovalDecided"):
            role = roles[name]
            self._allow(role, ["sagemaker:DescribeModelPackage"], [versions])
            # A policy of its own: the state machine invokes WaitForApproval, so
            # the function must not depend on a policy naming the state machine.
            iam.Policy(
                self,
                f"{name}TaskResponse",
                roles=[role],
                statements=[
                    iam.PolicyStatement(
                        actions=["states:SendTaskSuccess", "states:SendTaskFailure"],
                        resources=[state_machine],
                    )
                ],
            )
        self._grant_objects(roles["WaitForApproval"], read=False, write=True)
        self._grant_objects(roles["ApprovalDecided"], read=True, write=False)
        # AutoRollbackConfiguration: SageMaker reads the alarms' state as the
        # endpoint's execution role.
        alarms = [a.alarm_arn for a in self.endpoint_alarms.alarms]
        self._allow(self.sagemaker_role, ["cloudwatch:DescribeAlarms"], alarms)
        # The dashboard's custom metrics (PutMetricData has no resource scope).
        self._allow(
            roles["Evaluate"],
            ["cloudwatch:PutMetricData"],
            ["*"],
            {"StringEquals": {"cloudwatch:namespace": run_metrics.NAMESPACE}},
        )
        if self.retraining is not None:
            self._allow(
                self.retraining.role,
                ["states:StartExecution"],
                [self.pipeline.state_machine.state_machine_arn],
            )

    # -- outputs -----------------------------------------------------------------

    def _outputs(self) -> None:
        arn = self.pipeline.state_machine.state_machine_arn
        CfnOutput(self, "BucketName", value=self.storage.bucket.bucket_name)
        CfnOutput(self, "StateMachineArn", value=arn)
        CfnOutput(
            self,
            "StartExecutionUrl",
            description="Console page of the state machine (Start execution)",
            value=(
                f"https://{Aws.REGION}.console.aws.amazon.com/states/home"
                f"?region={Aws.REGION}#/statemachines/view/{arn}"
            ),
        )
        CfnOutput(self, "EndpointName", value=self.endpoint_name)
        CfnOutput(self, "TopicArn", value=self.notifications.topic.topic_arn)
        CfnOutput(self, "ModelPackageGroupName", value=self.registry.group_name)
        CfnOutput(
            self,
            "DashboardUrl",
            value=(
                f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region="
                f"{Aws.REGION}#dashboards:name={self.settings.stack_name}-pipeline"
            ),
        )
