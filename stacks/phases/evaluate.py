"""Evaluate phase: the confusion matrix, the compact summary, the success notice."""

from __future__ import annotations

from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from stacks.phases.common import JsonPath, PipelineFunctions, Steps


def summary_parameters() -> dict[str, object]:
    """Parameters of the Summarize Pass state: the compact execution output
    (and the success notice), built from the final state, which it replaces."""
    return {
        "execution_name": JsonPath.execution_name,
        "target_digit": JsonPath.number_at("$.run.target_digit"),
        "confusion_matrix": JsonPath.object_at("$.evaluation.confusion_matrix"),
        "metrics": JsonPath.object_at("$.evaluation.metrics"),
        "single_prediction": JsonPath.object_at("$.evaluation.single_prediction"),
        "report_uri": JsonPath.string_at("$.evaluation.report_uri"),
        "tuning_job": JsonPath.string_at("$.tuning.name"),
        "best_training_job": JsonPath.object_at("$.tuning.best"),
        "endpoint_name": JsonPath.string_at("$.deploy.endpoint_name"),
        "endpoint_config_name": JsonPath.string_at("$.deploy.endpoint_config_name"),
        "endpoint": JsonPath.object_at("$.evaluation.endpoint"),
        "cost": JsonPath.object_at("$.evaluation.cost"),
        "model_package_arn": JsonPath.string_at("$.registry.model_package_arn"),
        "approval_status": JsonPath.string_at("$.registry.approval_status"),
    }


def evaluate_phase(steps: Steps, f: PipelineFunctions, topic: sns.ITopic) -> sfn.IChainable:
    """Evaluate → Summarize → NotifySuccess → Succeeded."""
    scope = steps.scope
    evaluate = steps.invoke(
        "Evaluate",
        f.evaluate,
        {
            "run": JsonPath.object_at("$.run"),
            "data": JsonPath.object_at("$.data"),
            "deploy": JsonPath.object_at("$.deploy"),
            "tuning": JsonPath.object_at("$.tuning"),
            "lifecycle": JsonPath.object_at("$.lifecycle"),
            "registry": JsonPath.object_at("$.registry"),
            # The report's lineage names the execution.
            "execution_arn": JsonPath.execution_id,
        },
        "$.evaluation",
    )
    # No result_path: the compact summary replaces the state and is the output.
    summarize = sfn.Pass(scope, "Summarize", parameters=summary_parameters())
    succeeded = sfn.Succeed(scope, "Succeeded")
    notify = tasks.SnsPublish(
        scope,
        "NotifySuccess",
        topic=topic,
        subject="MNIST Linear Learner pipeline succeeded",
        message=sfn.TaskInput.from_json_path_at("$"),
        result_path=JsonPath.DISCARD,
    )
    Steps.add_sns_retry(notify)
    # The model is deployed and evaluated; a lost notice must not undo that
    # (the output is then the summary plus $.notify_error).
    notify.add_catch(succeeded, errors=[sfn.Errors.ALL], result_path="$.notify_error")
    evaluate.next(summarize).next(notify).next(succeeded)
    return evaluate
