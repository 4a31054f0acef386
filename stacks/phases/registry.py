"""Registry phase: the model registry between tuning and deployment.

Two ways in:
- after the quality gate, RegisterModel makes the best model a version of the
  stack's Model Package Group; approval ``auto`` deploys it at once,
  ``manual`` waits (``.waitForTaskToken``, bounded) until a person approves
  or rejects the version, released by the EventBridge rule on "SageMaker
  Model Package State Change" (stacks/approval.py);
- with input ``model_package_arn`` (deploy or roll back to a registered
  version), LoadModelPackage replaces conversion and tuning.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from pipeline_core import errors
from stacks.phases.common import NAMED_ERRORS, JsonPath, PipelineFunctions, Steps


def model_source(
    steps: Steps, f: PipelineFunctions, *, data: sfn.IChainable, deploy: sfn.IChainable
) -> sfn.IChainable:
    """ModelSource (Choice): a ``model_package_arn`` run loads that version and
    deploys it; any other run goes through ``data`` (convert, tune, register)."""
    load = steps.invoke(
        "LoadModelPackage",
        f.load_model_package,
        {"run": JsonPath.object_at("$.run")},
        "$.package",
    )
    # The version stands in for this run's data and tuning (evaluated on the
    # test split of the run that registered it).
    use = sfn.Pass(
        steps.scope,
        "UseModelPackage",
        parameters={
            "run": JsonPath.object_at("$.run"),
            "data": JsonPath.object_at("$.package.data"),
            "tuning": JsonPath.object_at("$.package.tuning"),
            "registry": JsonPath.object_at("$.package.registry"),
        },
    )
    load.next(use).next(deploy)
    return (
        sfn.Choice(steps.scope, "ModelSource")
        .when(
            sfn.Condition.and_(
                sfn.Condition.is_present("$.run.model_package_arn"),
                sfn.Condition.is_string("$.run.model_package_arn"),
            ),
            load,
        )
        .otherwise(data)
    )


def registry_phase(
    steps: Steps, f: PipelineFunctions, then: sfn.IChainable, *, approval_timeout: Duration
) -> sfn.IChainable:
    """RegisterModel → ApprovalMode → (auto | WaitForApproval) → ``then``."""
    scope = steps.scope
    register = steps.invoke(
        "RegisterModel",
        f.register_model,
        {
            "run": JsonPath.object_at("$.run"),
            "tuning": JsonPath.object_at("$.tuning"),
            "data": JsonPath.object_at("$.data"),
        },
        "$.registry",
    )
    wait = tasks.LambdaInvoke(
        scope,
        "WaitForApproval",
        lambda_function=f.await_approval,
        integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
        payload=sfn.TaskInput.from_object(
            {
                "task_token": JsonPath.task_token,
                "execution_name": JsonPath.execution_name,
                "registry": JsonPath.object_at("$.registry"),
            }
        ),
        retry_on_service_exceptions=False,
        # The release sends the registry block back with the new status.
        result_path="$.registry",
        task_timeout=sfn.Timeout.duration(approval_timeout),
    )
    wait.add_retry(
        errors=["Lambda.ServiceException", "Lambda.TooManyRequestsException"],
        interval=Duration.seconds(2),
        max_attempts=4,
        backoff_rate=2,
    )
    timed_out = steps.error_pass(
        "NoApprovalInTime", errors.ApprovalTimedOutError.__name__, "$.registry"
    )
    wait.add_catch(timed_out, errors=[sfn.Errors.TIMEOUT], result_path="$.approval_error")
    wait.add_catch(steps.notify_failure, errors=list(NAMED_ERRORS), result_path="$.error")
    wait.add_catch(steps.notify_failure, errors=[sfn.Errors.ALL], result_path="$.error")
    mode = (
        sfn.Choice(scope, "ApprovalMode")
        .when(sfn.Condition.string_equals("$.registry.approval_status", "Approved"), then)
        .otherwise(wait)
    )
    register.next(mode)
    wait.next(then)
    return register
