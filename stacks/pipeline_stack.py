"""The stack: wires the constructs together and grants every permission.

What each role may do is the table of that role in :mod:`stacks.grants`;
the stack hands it the roles and the ARNs the tables name.
"""

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

from pipeline_core.config import CONFIG_ENV
from pipeline_core.names import (
    STACK_TAG_KEY,
    default_endpoint_name,
    model_package_group_name,
    retraining_schedule_name,
)
from stacks.bundling import lambda_code
from stacks.cleanup import ExecutionCleanup
from stacks.dashboard import PipelineDashboard
from stacks.functions import ASYNC_FUNCTIONS as ASYNC_FUNCTIONS  # re-exported
from stacks.functions import FUNCTION_SPECS as FUNCTION_SPECS  # re-exported
from stacks.functions import RUNTIME, PipelineFunction
from stacks.grants import On, Targets, apply_grants
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

#: aws_logs.RetentionDays in the order of the day counts they stand for.
_RETENTION = dict(zip(sorted(LOG_RETENTION_DAYS), list(logs.RetentionDays)[:-1], strict=True))


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
                name=retraining_schedule_name(settings.stack_name),
                # Deleted before the cleanup runs: no scheduled start after it.
                delete_before=self.cleanup.resource,
            )

        self._grant()
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

    def schedule_arn(self) -> str:
        """TTL schedules: the default group, named after the endpoint (``<prefix>-*``)."""
        prefix = self.settings.pipeline.name_prefix
        return f"{self.arn_prefix('scheduler')}:schedule/default/{prefix}-*"

    def model_package_arns(self) -> tuple[str, str]:
        """(the group, its versions)."""
        group = self.model_package_group.lower()
        base = self.arn_prefix("sagemaker")
        return f"{base}:model-package-group/{group}", f"{base}:model-package/{group}/*"

    def executions_arn(self) -> str:
        """Executions of this stack's state machine."""
        name = self.pipeline.state_machine.state_machine_name
        return f"{self.arn_prefix('states')}:execution:{name}:*"

    def sagemaker_log_groups_arn(self) -> str:
        """Log groups SageMaker names itself (/aws/sagemaker/TrainingJobs, .../Endpoints/*)."""
        return f"{self.arn_prefix('logs')}:log-group:/aws/sagemaker/*"

    # -- grants (stacks/grants.py) ----------------------------------------------

    def _grant(self) -> None:
        """Every role its table of stacks.grants.GRANTS."""
        roles: dict[str, iam.IRole] = {name: f.role for name, f in self.functions.items()}
        roles["SageMakerExecution"] = self.sagemaker_role
        roles["EndpointTtlScheduler"] = self.scheduler_role
        roles["StateMachine"] = self.pipeline.state_machine.role
        if self.retraining is not None:
            roles["RetrainingSchedule"] = self.retraining.role
        bucket = self.storage.bucket
        group, versions = self.model_package_arns()
        arns: dict[On, str | Sequence[str]] = {
            On.ANY: "*",
            On.TUTORIAL_OBJECT: self.tutorial_object_arn(),
            On.BUCKET: bucket.bucket_arn,
            On.BUCKET_OBJECTS: bucket.arn_for_objects("*"),
            On.RUNS_OBJECTS: self.storage.runs_arn(),
            On.MANIFESTS: self.storage.manifests_arn(),
            On.TUNING_JOB: self.sagemaker_arn("hyper-parameter-tuning-job"),
            On.TRAINING_JOB: self.sagemaker_arn("training-job"),
            On.MODEL: self.sagemaker_arn("model"),
            On.ENDPOINT_CONFIG: self.sagemaker_arn("endpoint-config"),
            On.ENDPOINT: self.sagemaker_arn("endpoint"),
            On.TRANSFORM_JOB: self.sagemaker_arn("transform-job"),
            On.MODEL_PACKAGE_GROUP: group,
            On.MODEL_PACKAGES: versions,
            On.LEASE_TABLE: self.leases.table.table_arn,
            On.TOPIC: self.notifications.topic.topic_arn,
            On.KEY: [] if self.key is None else [self.key.key_arn],
            On.SAGEMAKER_ROLE: self.sagemaker_role.role_arn,
            On.SCHEDULER_ROLE: self.scheduler_role.role_arn,
            On.SCHEDULES: self.schedule_arn(),
            On.STATE_MACHINE: self.pipeline.state_machine.state_machine_arn,
            On.EXECUTIONS: self.executions_arn(),
            On.ENDPOINT_TTL_FUNCTION: self.functions["EndpointTtl"].function.function_arn,
            On.ROLLBACK_ALARMS: [a.alarm_arn for a in self.endpoint_alarms.alarms],
            On.IMAGE_REPOSITORY: self.image.repository_arn,
            On.SAGEMAKER_LOG_GROUPS: self.sagemaker_log_groups_arn(),
        }
        apply_grants(
            self,
            roles,
            Targets(
                resources={
                    on: (arn,) if isinstance(arn, str) else tuple(arn) for on, arn in arns.items()
                },
                stack_tag=self.stack_tag,
                instance_types=tuple(self.settings.pipeline.allowed_instance_types),
            ),
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
