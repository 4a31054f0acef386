"""The stack's CloudWatch dashboard: executions, the tuning objective of
recent runs (custom metrics published by Evaluate, pipeline_core.run_metrics)
and the endpoint's invocations, latency and 5xx errors with its rollback alarms."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from pipeline_core import run_metrics
from stacks.registry import EndpointAlarms


class PipelineDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dashboard_name: str,
        state_machine: sfn.StateMachine,
        stack_tag: str,
        endpoint: EndpointAlarms,
    ) -> None:
        super().__init__(scope, construct_id)
        hour = Duration.hours(1)
        day = Duration.days(1)

        def run_metric(name: str, label: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=run_metrics.NAMESPACE,
                metric_name=name,
                dimensions_map={run_metrics.STACK_DIMENSION: stack_tag},
                statistic="Maximum",
                period=day,
                label=label,
            )

        executions = cloudwatch.GraphWidget(
            title="Executions",
            left=[
                state_machine.metric_started(period=hour, label="started"),
                state_machine.metric_succeeded(period=hour, label="succeeded"),
                state_machine.metric_failed(period=hour, label="failed"),
                state_machine.metric_timed_out(period=hour, label="timed out"),
                state_machine.metric_aborted(period=hour, label="aborted"),
            ],
            width=12,
        )
        quality = cloudwatch.GraphWidget(
            title="Recent runs: tuning objective and test quality",
            left=[
                run_metric(run_metrics.TUNING_OBJECTIVE, "tuning objective (best job)"),
                run_metric(run_metrics.TEST_F1, "test F1"),
                run_metric(run_metrics.TEST_ACCURACY, "test accuracy"),
            ],
            left_y_axis=cloudwatch.YAxisProps(min=0, max=1),
            width=12,
        )
        invocations = cloudwatch.GraphWidget(
            title="Endpoint invocations and 5xx errors",
            left=[endpoint.invocations_metric],
            right=[endpoint.errors_metric],
            width=8,
        )
        latency = cloudwatch.GraphWidget(
            title="Endpoint model latency (microseconds)",
            left=[endpoint.latency_metric],
            left_annotations=[
                cloudwatch.HorizontalAnnotation(
                    value=endpoint.latency_threshold, label="rollback alarm"
                )
            ],
            width=8,
        )
        alarms = cloudwatch.AlarmStatusWidget(
            title="Rollback alarms", alarms=list(endpoint.alarms), width=8
        )
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name,
            widgets=[[executions, quality], [invocations, latency, alarms]],
        )
