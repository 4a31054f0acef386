"""A local AWS account on loopback: the one place that starts it.

:class:`LocalAccount` starts moto (S3, STS, IAM, CloudWatch Logs and
metrics, SNS, Step Functions, Lambda, Scheduler, DynamoDB, EventBridge: see
:data:`local.account.services.MOTO_SERVICES`, extended with
:func:`local.account.services.register_moto_service`) and the local SageMaker and
SageMaker Runtime (:mod:`local.emulator.service`), then points this
process's boto3 at them. ``python -m local services`` keeps one up for other
programs (the AWS CLI, boto3, the SageMaker SDK) and ``make run`` runs one
execution on one. Both emit the EventBridge events of Step Functions
(:mod:`.execution_events`) and SageMaker to the template's rules, and fire
EventBridge Scheduler schedules (:mod:`.scheduler`), which moto only stores.

:meth:`LocalAccount.deploy_pipeline` deploys the synthesized template the way
CloudFormation would for what the pipeline needs: every resource type with a
creator in :data:`RESOURCE_CREATORS` (buckets, topics, DynamoDB tables, log
groups; add more with :func:`register_resource_creator`), then the state
machine, with its Lambda tasks dispatched in-process to the real handlers.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from local.account import liveness
from local.account.alarms import AlarmEvaluator
from local.account.event_rules import LocalEventRules, rules_from_template
from local.account.example_role import ROLE_NAME as EXAMPLE_ROLE_NAME
from local.account.example_role import ensure_example_role
from local.account.execution_events import ExecutionWatcher
from local.account.lambda_dispatch import LambdaDispatcher
from local.account.scheduler import Clock, LocalScheduler
from local.account.services import (
    ACCOUNT,
    LOOPBACK,
    REGION,
    MotoServer,
    aws_environment,
    credentials_environment,
    endpoint_environment,
    patched_environ,
)
from local.account.states_metrics import StatesMetrics
from local.account.synth import SynthesizedPipeline, override_retry_interval
from local.emulator.service import LocalSageMaker
from pipeline_core.errors import EndpointBusyError
from stacks import asl
from training.serving import BackgroundServer

STATE_MACHINE_NAME = "mnist-ll-local-pipeline"
#: The tutorial's public object (``mnist_cache.PUBLIC_BUCKET``/``PUBLIC_KEY``).
TUTORIAL_BUCKET = "sagemaker-example-files-prod-{region}"
TUTORIAL_KEY = "datasets/image/MNIST/mnist.pkl.gz"

Event = Callable[[str, dict[str, Any]], None]
ResourceCreator = Callable[["ResourceContext"], None]


@dataclass(frozen=True)
class ResourceContext:
    """One template resource to create, with its resolved properties."""

    logical_id: str
    resource_type: str
    properties: Mapping[str, Any]
    resolver: asl.Resolver

    @property
    def physical_name(self) -> str:
        """What ``Ref`` gives for the resource (its name or ARN)."""
        return str(self.resolver.ref(self.logical_id))


@contextmanager
def _exists_ok() -> Iterator[None]:
    """moto keeps its state per process: an account started again in the
    same process (tests) finds the resources of the one before."""
    try:
        yield
    except ClientError as e:
        if e.response["Error"]["Code"] not in _EXISTS_CODES:
            raise


_EXISTS_CODES = {
    "ResourceAlreadyExistsException",
    "ResourceInUseException",
    "BucketAlreadyOwnedByYou",
    "TableAlreadyExistsException",
}


def _create_bucket(ctx: ResourceContext) -> None:
    with _exists_ok():
        boto3.client("s3").create_bucket(Bucket=ctx.resolver.bucket_name(ctx.logical_id))


def _create_topic(ctx: ResourceContext) -> None:
    arn = ctx.physical_name
    created = boto3.client("sns").create_topic(Name=arn.rsplit(":", 1)[-1])["TopicArn"]
    if created != arn:
        raise RuntimeError(f"topic {arn} resolved differently locally: {created}")


def _create_table(ctx: ResourceContext) -> None:
    props = ctx.properties
    kwargs: dict[str, Any] = {
        "TableName": ctx.physical_name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if kwargs["BillingMode"] == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = props.get(
            "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        )
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification"):
        if key in props:
            kwargs[key] = props[key]
    client = boto3.client("dynamodb")
    with _exists_ok():
        client.create_table(**kwargs)
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        client.update_time_to_live(TableName=kwargs["TableName"], TimeToLiveSpecification=ttl)


def _create_model_package_group(ctx: ResourceContext) -> None:
    props = ctx.properties
    kwargs: dict[str, Any] = {
        "ModelPackageGroupName": props["ModelPackageGroupName"],
        "ModelPackageGroupDescription": props.get("ModelPackageGroupDescription", ""),
    }
    if props.get("Tags"):
        # The group's tags are its versions' tags too (they cannot have their own).
        kwargs["Tags"] = [{"Key": t["Key"], "Value": t["Value"]} for t in props["Tags"]]
    boto3.client("sagemaker").create_model_package_group(**kwargs)


def _create_alarm(ctx: ResourceContext) -> None:
    props = ctx.properties
    kwargs: dict[str, Any] = {
        key: props[key]
        for key in (
            "AlarmName",
            "AlarmDescription",
            "MetricName",
            "Namespace",
            "Statistic",
            "Period",
            "EvaluationPeriods",
            "Threshold",
            "ComparisonOperator",
            "TreatMissingData",
            "Dimensions",
            "DatapointsToAlarm",
            "ExtendedStatistic",
            "Unit",
            "ActionsEnabled",
            "AlarmActions",
            "OKActions",
            "InsufficientDataActions",
            "EvaluateLowSampleCountPercentile",
            "Metrics",
            "ThresholdMetricId",
        )
        if key in props
    }
    kwargs.setdefault("AlarmName", ctx.logical_id)
    if "ThresholdMetricId" not in kwargs:
        kwargs["Threshold"] = float(kwargs.get("Threshold", 0))
    boto3.client("cloudwatch").put_metric_alarm(**kwargs)


def _create_log_group(ctx: ResourceContext) -> None:
    name = ctx.physical_name
    if name != ctx.logical_id:  # only named groups: the handlers' own are made on use
        with _exists_ok():
            boto3.client("logs").create_log_group(logGroupName=name)


def _create_schedule(ctx: ResourceContext) -> None:
    """A template schedule (the retraining one, stacks/schedule.py): moto
    stores it and the account's Scheduler fires it."""
    props = dict(ctx.properties)
    kwargs: dict[str, Any] = {
        key: props[key]
        for key in (
            "Name", "GroupName", "Description", "ScheduleExpression",
            "ScheduleExpressionTimezone", "StartDate", "EndDate", "State",
            "FlexibleTimeWindow", "Target", "ActionAfterCompletion", "KmsKeyArn",
        )
        if key in props
    }  # fmt: skip
    kwargs.setdefault("Name", ctx.logical_id)
    client = boto3.client("scheduler")
    try:
        client.create_schedule(**kwargs)
    except ClientError as e:
        if e.response["Error"]["Code"] != "ConflictException":
            raise
        client.update_schedule(**kwargs)  # an earlier account in this process made it


#: CloudFormation resource type -> how to create it in the local account.
RESOURCE_CREATORS: dict[str, ResourceCreator] = {
    "AWS::S3::Bucket": _create_bucket,
    "AWS::SNS::Topic": _create_topic,
    "AWS::DynamoDB::Table": _create_table,
    "AWS::Logs::LogGroup": _create_log_group,
    "AWS::SageMaker::ModelPackageGroup": _create_model_package_group,
    "AWS::CloudWatch::Alarm": _create_alarm,
    "AWS::Scheduler::Schedule": _create_schedule,
}


def register_resource_creator(resource_type: str, creator: ResourceCreator) -> None:
    """Create template resources of ``resource_type`` with ``creator`` too."""
    RESOURCE_CREATORS[resource_type] = creator


@dataclass
class Deployment:
    """What :meth:`LocalAccount.deploy_pipeline` created."""

    state_machine_arn: str
    bucket: str
    topic_arn: str
    dispatcher: LambdaDispatcher
    resources: dict[str, str]
    #: The template's EventBridge rules, for events moto does not emit.
    events: LocalEventRules | None = None


class LocalAccount:
    """moto plus the local SageMaker, on 127.0.0.1, for one process's lifetime.

    ``start()`` patches this process's environment (credentials, region and
    every ``AWS_ENDPOINT_URL_*``) so plain ``boto3.client(...)`` calls land
    here; ``stop()`` undoes it.
    """

    def __init__(
        self,
        *,
        work_dir: Path,
        backend: Any,
        region: str = REGION,
        account: str = ACCOUNT,
        on_sagemaker_event: Event | None = None,
        log_level: str = "WARNING",
        moto_port: int = 0,
        sagemaker_port: int = 0,
        alarm_interval_seconds: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        if region != REGION or account != ACCOUNT:
            # moto's ASL interpreter and the synthesized ARNs assume these.
            raise ValueError(f"the local account is {ACCOUNT} in {REGION}")
        self.work_dir = work_dir
        self.backend = backend
        self.region = region
        self.account = account
        self.log_level = log_level
        self._on_event = on_sagemaker_event
        self.moto = MotoServer(port=moto_port)
        self._sagemaker_port = sagemaker_port
        self.sagemaker: LocalSageMaker | None = None
        self._sm_server: BackgroundServer | None = None
        self._env_ctx: Any = None
        self._lambda_env_ctx: Any = None
        self._undo_dispatch: Callable[[], None] | None = None
        self.deployment: Deployment | None = None
        self._alarm_interval = alarm_interval_seconds
        #: Evaluates the account's CloudWatch alarms (local/account/alarms.py).
        self.alarms: AlarmEvaluator | None = None
        self.states_metrics: StatesMetrics | None = None
        #: Step Functions' status change events (local/account/execution_events.py).
        self.executions = ExecutionWatcher(account=account, region=region)
        #: Fires the schedules moto stores (local/account/scheduler.py); tests pass a TestClock.
        self.scheduler = LocalScheduler(clock=clock)

    # -- lifecycle ----------------------------------------------------------------

    def __enter__(self) -> LocalAccount:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _moto_client(self, service: str) -> Any:
        """A client of the embedded moto for the local SageMaker's own use."""
        return boto3.client(
            service,
            endpoint_url=self.moto.url,
            region_name=self.region,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - not a secret
        )

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.moto.start()
        # The env file's role, as the SageMaker SDK v3 validates it (example_role.py).
        ensure_example_role(self._moto_client("iam"))
        s3_for_service = self._moto_client("s3")
        logs_for_service = self._moto_client("logs")
        self.sagemaker = LocalSageMaker(
            backend=self.backend,
            s3_client=s3_for_service,
            work_dir=self.work_dir / "sagemaker",
            region=self.region,
            account=self.account,
            on_event=self._on_event,
        )
        self.sagemaker.logs = logs_for_service
        # Deployment guardrails read the alarms' state (local/emulator/guardrails.py).
        self.sagemaker.cloudwatch = self._moto_client("cloudwatch")
        self._sm_server = BackgroundServer(
            self.sagemaker.app(), host=LOOPBACK, port=self._sagemaker_port
        )
        self._sm_server.start()
        self._env_ctx = patched_environ(
            aws_environment(self.moto.url, self._sm_server.url, self.log_level)
        )
        self._env_ctx.__enter__()
        self.alarms = AlarmEvaluator(
            cloudwatch=self.sagemaker.cloudwatch,
            sns=self._moto_client("sns"),
            region=self.region,
            account=self.account,
            interval=self._alarm_interval,
        )
        # AWS/States execution metrics, which moto does not publish: from the
        # status-change events the watcher already makes.
        states_metrics = StatesMetrics(self.sagemaker.cloudwatch)
        self.states_metrics = states_metrics
        self.executions.listeners.append(
            lambda event: states_metrics.on_status_change(event["detail"])
        )
        # moto's state is per process: only the newest account's loops act on it.
        liveness.claim(self)
        for loop in (self.alarms, self.executions, self.scheduler):
            loop.live = lambda: liveness.is_live(self)
        self.alarms.start()
        self.executions.start()
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()
        self.executions.stop()
        # Deliveries under way finish against this account, not against a stopped one.
        if self.deployment is not None and self.deployment.events is not None:
            self.deployment.events.wait_idle(30)
        self.scheduler.wait_idle(30)
        if self.alarms is not None:
            self.alarms.stop()
            self.alarms = None
        if self.sagemaker is not None:
            self.sagemaker.shutdown()
        if self._undo_dispatch:
            self._undo_dispatch()
            self._undo_dispatch = None
        if self._sm_server:
            self._sm_server.stop()
            self._sm_server = None
        if self._lambda_env_ctx is not None:
            self._lambda_env_ctx.__exit__(None, None, None)
            self._lambda_env_ctx = None
        if self._env_ctx is not None:
            self._env_ctx.__exit__(None, None, None)
            self._env_ctx = None
        self.moto.stop()
        liveness.release(self)

    @property
    def sagemaker_url(self) -> str:
        assert self._sm_server is not None, "the account is not started"
        return self._sm_server.url

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{self.account}:role/{EXAMPLE_ROLE_NAME}"

    @property
    def sdk_bucket(self) -> str:
        """The SageMaker SDK's default bucket name for this account."""
        return f"sagemaker-{self.region}-{self.account}"

    # -- what it has deployed ------------------------------------------------------

    def deploy_pipeline(
        self,
        synth: SynthesizedPipeline,
        *,
        function_overrides: Mapping[str, str] | None = None,
        config_overrides: Mapping[str, Any] | None = None,
    ) -> Deployment:
        """Create the template's resources, then its state machine, with the
        Lambda tasks dispatched to the real handlers."""
        functions = synth.lambda_functions(
            region=self.region,
            account=self.account,
            overrides=dict(function_overrides or {}),
            config_overrides=dict(config_overrides or {}),
        )
        # Every Lambda variable stays set while the pipeline is deployed (each
        # invocation only swaps values): a thread copying os.environ (the tuner
        # starting a job) never meets a key that an ending invocation removes.
        lambda_keys = {k: v for f in functions.values() for k, v in f.environment.items()}
        lambda_keys.update(aws_environment(self.moto.url, self.sagemaker_url, self.log_level))
        self._lambda_env_ctx = patched_environ(lambda_keys)
        self._lambda_env_ctx.__enter__()
        definition = synth.definition(region=self.region, account=self.account)
        busy_interval = (config_overrides or {}).get("endpoint_busy_interval_seconds")
        if busy_interval is not None:
            override_retry_interval(definition, EndpointBusyError.__name__, int(busy_interval))
        resolver = asl.Resolver(_named_state_machine(synth.template), self.region, self.account)
        created: dict[str, str] = {}
        for logical_id, resource in synth.template.get("Resources", {}).items():
            creator = RESOURCE_CREATORS.get(resource.get("Type", ""))
            if creator is None:
                continue
            ctx = ResourceContext(
                logical_id=logical_id,
                resource_type=resource["Type"],
                properties=resolver.resolve(resource.get("Properties", {})),
                resolver=resolver,
            )
            creator(ctx)
            created[logical_id] = ctx.physical_name
        buckets = {f.environment.get("DATA_BUCKET") for f in functions.values()} - {None}
        if len(buckets) != 1:
            raise RuntimeError(f"expected one DATA_BUCKET across the Lambdas, got {buckets}")
        topics = sorted(_topic_arns(definition))
        dispatcher = LambdaDispatcher(functions)
        self._undo_dispatch = dispatcher.install()
        sfn = boto3.client("stepfunctions")
        arn = sfn.create_state_machine(
            name=STATE_MACHINE_NAME,
            definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{self.account}:role/{STATE_MACHINE_NAME}",
            type="STANDARD",
        )["stateMachineArn"]
        # moto's state outlives a server in this process and its create returns an
        # existing machine unchanged: make sure this pipeline's definition runs.
        sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(definition))
        events = LocalEventRules(rules_from_template(resolver.template, resolver), dispatcher)
        assert self.sagemaker is not None
        # SageMaker's and Step Functions' events, and Scheduler's Lambda targets.
        self.sagemaker.registry.on_state_change = events.put
        self.sagemaker.on_aws_event = events.put
        self.executions.put = events.put
        self.scheduler.dispatcher = dispatcher
        self.deployment = Deployment(
            state_machine_arn=arn,
            bucket=str(buckets.pop()),
            topic_arn=topics[-1] if topics else "",
            dispatcher=dispatcher,
            resources=created,
            events=events,
        )
        return self.deployment

    def seed_tutorial_object(self, dataset: Path) -> str:
        """Put ``dataset`` at the tutorial's public bucket and key; its URI."""
        bucket = TUTORIAL_BUCKET.format(region=self.region)
        s3 = boto3.client("s3")
        try:
            s3.head_bucket(Bucket=bucket)
        except s3.exceptions.ClientError:
            s3.create_bucket(Bucket=bucket)
        s3.upload_file(str(dataset), bucket, TUTORIAL_KEY)
        return f"s3://{bucket}/{TUTORIAL_KEY}"

    def create_sdk_bucket(self) -> str:
        with _exists_ok():
            boto3.client("s3").create_bucket(Bucket=self.sdk_bucket)
        return self.sdk_bucket

    # -- what it tells other programs -------------------------------------------------

    def client_environment(self, sdk_config: Path | None = None) -> dict[str, str]:
        """What another program needs to use this account (the env file)."""
        env = {
            **credentials_environment(),
            **endpoint_environment(self.moto.url, self.sagemaker_url),
        }
        if self.deployment is not None:
            env["MNIST_LL_STATE_MACHINE_ARN"] = self.deployment.state_machine_arn
            env["MNIST_LL_BUCKET"] = self.deployment.bucket
            if self.deployment.topic_arn:
                env["MNIST_LL_TOPIC_ARN"] = self.deployment.topic_arn
        env["MNIST_LL_ROLE_ARN"] = self.role_arn
        if sdk_config is not None:
            env["SAGEMAKER_USER_CONFIG_OVERRIDE"] = str(sdk_config)
        return env

    def write_sdk_config(self, path: Path) -> Path:
        """The SageMaker Python SDK's config file: the default bucket (so
        ``Session.default_bucket()`` needs no STS call to a regional URL) and
        telemetry opted out."""
        config = {
            "SchemaVersion": "1.0",
            "SageMaker": {
                "PythonSDK": {
                    "Modules": {
                        "Session": {"DefaultS3Bucket": self.sdk_bucket},
                        "TelemetryOptOut": True,
                    }
                }
            },
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        # JSON is YAML: the SDK's YAML loader reads it as is.
        path.write_text(json.dumps(config, indent=2) + "\n")
        return path


def export_lines(env: Mapping[str, str]) -> list[str]:
    return [f"export {key}={shlex.quote(value)}" for key, value in sorted(env.items())]


def _named_state_machine(template: Mapping[str, Any]) -> dict[str, Any]:
    """The template with its state machine named as deployed here, so a Ref
    to it (the end-of-execution rule's pattern, the retraining schedule's
    target) resolves to the local state machine's ARN."""
    resources = dict(template.get("Resources", {}))
    for logical_id, resource in resources.items():
        if resource.get("Type") == asl.STATE_MACHINE_TYPE:
            props = {**resource.get("Properties", {}), "StateMachineName": STATE_MACHINE_NAME}
            resources[logical_id] = {**resource, "Properties": props}
    return {**template, "Resources": resources}


def _topic_arns(node: Any) -> set[str]:
    """Every SNS ``TopicArn`` parameter in the definition."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "TopicArn" and isinstance(value, str):
                found.add(value)
            else:
                found |= _topic_arns(value)
    elif isinstance(node, list):
        for item in node:
            found |= _topic_arns(item)
    return found
