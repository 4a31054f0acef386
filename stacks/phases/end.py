"""End handling inside the execution: NotifyFailure → RouteFailure → the named
Fail states. (Endings the execution cannot see itself, a timeout or a Stop,
are handled outside it: stacks/execution_end.py.)"""

from __future__ import annotations

from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from pipeline_core import errors
from stacks.phases.common import JsonPath, Steps, any_of

#: RouteFailure: error name → Fail state. Anything else ends in PipelineFailed.
FAILURE_ROUTES: dict[str, tuple[str, ...]] = {
    "InvalidInput": (
        errors.InvalidInputError.__name__,
        errors.TooFewTrainObjectsError.__name__,
    ),
    "InvalidDataset": (
        errors.InvalidDatasetError.__name__,
        errors.SourceNotFoundError.__name__,
        errors.SourceAccessDeniedError.__name__,
        errors.ModelTestDataMissingError.__name__,
    ),
    "TuningFailed": (errors.TuningJobFailedError.__name__,),
    "QualityGateFailed": (errors.QualityGateFailedError.__name__,),
    "EndpointFailed": (errors.EndpointDeploymentFailedError.__name__,),
    "EndpointBusy": (errors.EndpointBusyError.__name__,),
    "NameCollision": (errors.NameCollisionError.__name__,),
    "TransformFailed": (errors.TransformJobFailedError.__name__,),
    "InstanceTypeUnavailable": (errors.InstanceTypeUnavailableError.__name__,),
    "ModelRejected": (errors.ModelPackageRejectedError.__name__,),
    "ApprovalTimedOut": (errors.ApprovalTimedOutError.__name__,),
    "ModelNotApproved": (errors.ModelPackageNotApprovedError.__name__,),
    "EndpointRolledBack": (errors.EndpointUpdateRolledBackError.__name__,),
}
DEFAULT_FAILURE = "PipelineFailed"


def failure_chain(scope: Construct, topic: sns.ITopic) -> tasks.SnsPublish:
    """NotifyFailure → RouteFailure → the named Fail states."""
    route = sfn.Choice(scope, "RouteFailure")
    for state_name, error_names in FAILURE_ROUTES.items():
        route.when(any_of("$.error.Error", error_names), _fail(scope, state_name))
    route.otherwise(_fail(scope, DEFAULT_FAILURE))

    notify = tasks.SnsPublish(
        scope,
        "NotifyFailure",
        topic=topic,
        subject="MNIST Linear Learner pipeline FAILED",
        message=sfn.TaskInput.from_object(
            {
                "status": "FAILED",
                "execution": JsonPath.execution_name,
                "error": JsonPath.string_at("$.error.Error"),
                "cause": JsonPath.string_at("$.error.Cause"),
            }
        ),
        result_path=JsonPath.DISCARD,
    )
    Steps.add_sns_retry(notify)
    # A failed publish must still end in the right Fail state.
    notify.add_catch(route, errors=[sfn.Errors.ALL], result_path="$.notify_error")
    notify.next(route)
    return notify


def _fail(scope: Construct, state_name: str) -> sfn.Fail:
    return sfn.Fail(
        scope,
        state_name,
        error_path=JsonPath.string_at("$.error.Error"),
        cause_path=JsonPath.string_at("$.error.Cause"),
    )
