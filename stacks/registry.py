"""The model registry and the guard rails of an endpoint update.

- :class:`ModelRegistry`: the stack's Model Package Group (versions are
  created at run time by RegisterModel and use the group's tags) and the EventBridge rule that sends
  "SageMaker Model Package State Change" of that group to the Lambda that
  releases an execution waiting for manual approval.
- :class:`EndpointAlarms`: CloudWatch alarms on the stack's endpoint
  (Invocation5XXErrors, ModelLatency) that UpdateEndpoint's
  AutoRollbackConfiguration names: if one fires while traffic shifts,
  SageMaker rolls the update back.

Locally the SageMaker emulator puts the state-change event on the local
account's bus (local/emulator/registry.py), where the template's rule
delivers it to the same Lambda; ``python -m local approve`` decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Tags
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pipeline_core.approval import DETAIL_TYPE, EVENT_SOURCE
from pipeline_core.deploy import VARIANT_NAME
from pipeline_core.registry import APPROVED, REJECTED
from pipeline_core.rollout import alarm_names, parse_rollout


class ModelRegistry(Construct):
    """Model Package Group + the approval rule."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        group_name: str,
        approval_handler: lambda_.IFunction,
        removal_policy: RemovalPolicy,
        tags: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.group_name = group_name
        self.group = sagemaker.CfnModelPackageGroup(
            self,
            "Group",
            model_package_group_name=group_name,
            model_package_group_description=(
                "MNIST Linear Learner: every tuned model that passed the quality gate"
            ),
        )
        # CreateModelPackage with a group takes no Tags: each version uses the
        # group's, so the group carries the stack tag.
        for key, value in tags.items():
            Tags.of(self.group).add(key, value)
        # The stack's removal policy: with destroy, the cleanup custom resource
        # deletes the versions first (a group with versions cannot be deleted).
        self.group.apply_removal_policy(removal_policy)
        self.approval_rule = events.Rule(
            self,
            "ApprovalRule",
            description="A registered version was approved or rejected: release its execution",
            event_pattern=events.EventPattern(
                source=[EVENT_SOURCE],
                detail_type=[DETAIL_TYPE],
                detail={
                    "ModelPackageGroupName": [group_name],
                    "ModelApprovalStatus": [APPROVED, REJECTED],
                },
            ),
            targets=[
                targets.LambdaFunction(
                    approval_handler, retry_attempts=8, max_event_age=Duration.hours(2)
                )
            ],
        )


class EndpointAlarms(Construct):
    """The alarms an update of ``endpoint_name`` rolls back on."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        rollout: Mapping[str, Any],
    ) -> None:
        super().__init__(scope, construct_id)
        r = parse_rollout(rollout)
        #: ModelLatency (microseconds) above which an update rolls back.
        self.latency_threshold = float(r["max_model_latency_ms"] * 1000)
        dimensions = {"EndpointName": endpoint_name, "VariantName": VARIANT_NAME}
        errors_name, latency_name = alarm_names(endpoint_name)
        self.errors_metric = cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name="Invocation5XXErrors",
            dimensions_map=dimensions,
            statistic="Sum",
            period=Duration.minutes(1),
        )
        # ModelLatency is in microseconds.
        self.latency_metric = cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name="ModelLatency",
            dimensions_map=dimensions,
            statistic="Average",
            period=Duration.minutes(1),
        )
        self.invocations_metric = cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name="Invocations",
            dimensions_map=dimensions,
            statistic="Sum",
            period=Duration.minutes(5),
        )
        self.errors = cloudwatch.Alarm(
            self,
            "Invocation5XXErrors",
            alarm_name=errors_name,
            alarm_description=f"{endpoint_name}: server errors (rolls back an endpoint update)",
            metric=self.errors_metric,
            threshold=r["max_5xx_per_minute"],
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.latency = cloudwatch.Alarm(
            self,
            "ModelLatency",
            alarm_name=latency_name,
            alarm_description=f"{endpoint_name}: model latency (rolls back an endpoint update)",
            metric=self.latency_metric,
            threshold=self.latency_threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    @property
    def alarms(self) -> tuple[cloudwatch.Alarm, cloudwatch.Alarm]:
        return self.errors, self.latency
