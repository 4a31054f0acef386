"""Tuning phase: start the tuning job, poll it, apply the quality gate."""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn

from pipeline_core import errors
from stacks.phases.common import (
    UNEXPECTED_STATUS_ERROR,
    JsonPath,
    PipelineFunctions,
    Steps,
    any_of,
)

#: Statuses (normalised by the describe handler) that mean "poll again".
TUNING_IN_PROGRESS: tuple[str, ...] = ("InProgress", "Stopping")


def tuning_phase(steps: Steps, f: PipelineFunctions, then: sfn.IChainable) -> sfn.IChainable:
    """StartTuning → Wait → DescribeTuning → TuningStatus → QualityGate → ``then``."""
    scope = steps.scope
    start = steps.invoke(
        "StartTuning",
        f.start_tuning,
        {"run": JsonPath.object_at("$.run"), "data": JsonPath.object_at("$.data")},
        "$.tuning",
        sagemaker_limits=True,
    )
    wait = steps.poll_wait("WaitForTuning")
    describe = steps.invoke(
        "DescribeTuning",
        f.describe_tuning,
        {"run": JsonPath.object_at("$.run"), "tuning": JsonPath.object_at("$.tuning")},
        "$.tuning",
    )
    failed = steps.error_pass(
        "TuningJobNotCompleted", errors.TuningJobFailedError.__name__, "$.tuning"
    )
    unexpected = steps.error_pass("UnexpectedTuningStatus", UNEXPECTED_STATUS_ERROR, "$.tuning")
    gate_failed = steps.error_pass(
        "QualityGateNotMet", errors.QualityGateFailedError.__name__, "$.tuning"
    )
    # Checked for presence first: a missing flag fails the gate, never errors.
    gate = (
        sfn.Choice(scope, "QualityGate")
        .when(sfn.Condition.is_not_present("$.tuning.gate.passed"), gate_failed)
        .when(sfn.Condition.boolean_equals("$.tuning.gate.passed", True), then)
        .otherwise(gate_failed)
    )
    status = (
        sfn.Choice(scope, "TuningStatus")
        .when(sfn.Condition.is_not_present("$.tuning.status"), unexpected)
        .when(sfn.Condition.string_equals("$.tuning.status", "Completed"), gate)
        .when(any_of("$.tuning.status", ("Failed", "Stopped")), failed)
        .when(any_of("$.tuning.status", TUNING_IN_PROGRESS), wait)
        .otherwise(unexpected)
    )
    start.next(wait)
    wait.next(describe).next(status)
    return start
