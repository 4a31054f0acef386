"""One sentence with the next step for every way an execution fails.

A Fail state's cause is whatever reached ``$.error.Cause``: a Lambda's error
JSON (``errorType``, ``errorMessage``), or, for a failure a Choice detects
(the quality gate, a tuning job that did not complete, an approval that timed
out), the state's block as JSON. :func:`failure_message` turns either into one
line that says what happened and what to do; the local run's report and
terminal show it, and ``docs/FAILURES.md`` lists the same next steps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: What to do, by the error's name, when its message does not say already.
NEXT_STEPS: dict[str, str] = {
    "InvalidInputError": "fix the execution input",
    "TooFewTrainObjectsError": "use more (smaller) train shards or fewer training instances",
    "InvalidDatasetError": "fix the dataset",
    "SourceNotFoundError": "check the source URI",
    "SourceAccessDeniedError": "check the source URI and the bucket policy",
    "TuningJobFailedError": "read the training jobs' logs and run again",
    "QualityGateFailedError": "lower min_objective, widen the ranges or raise max_jobs",
    "EndpointDeploymentFailedError": "fix the cause (often a quota) and run again",
    "EndpointBusyError": "run again once that deployment ends, or choose another endpoint_name",
    "NameCollisionError": "look at that resource's tags; choose another endpoint_name or "
    "delete the resource if nothing needs it",
    "TransformJobFailedError": "read the transform job's logs and run again",
    "InstanceTypeUnavailableError": "set the instance type key to a type the region offers",
    "ModelPackageRejectedError": "run again to register a new version, or deploy an approved "
    "one with the input model_package_arn",
    "ApprovalTimedOutError": "approve the version and deploy it with the input model_package_arn",
    "ModelPackageNotApprovedError": "approve the version first",
    "EndpointUpdateRolledBackError": "look at the alarm and the new model, then run again",
    "ResourceLimitError": "request a quota increase and run again",
    "PollLimitExceededError": "look at the job in the SageMaker console",
}
GENERIC_NEXT_STEP = "see docs/FAILURES.md"


def gate_message(gate: Mapping[str, Any], metric: str | None) -> str:
    """``best validation:binary_f_beta 0.885 < min_objective 0.90; …``."""
    value = gate.get("objective")
    threshold = gate.get("threshold")
    step = NEXT_STEPS["QualityGateFailedError"]
    if value is None:
        return f"the tuning job reported no objective to compare with min_objective; {step}"
    worse = ">" if gate.get("objective_type") == "Minimize" else "<"
    return f"best {metric or 'objective'} {value:.3f} {worse} min_objective {threshold}; {step}"


def _parse(cause: str | None) -> Any:
    if not cause:
        return None
    try:
        return json.loads(cause)
    except json.JSONDecodeError:
        return None


def _with_step(message: str, error: str | None) -> str:
    step = NEXT_STEPS.get(error or "", GENERIC_NEXT_STEP)
    message = message.strip().rstrip(".")
    if ";" in message or step in message:
        return message  # the message names its next step already
    return f"{message}; {step}"


def failure_message(error: str | None, cause: str | None) -> str:
    """One line: what failed and what to do next."""
    parsed = _parse(cause)
    if not isinstance(parsed, dict):
        return _with_step(cause or f"the execution failed with {error or 'no error name'}", error)
    if "errorMessage" in parsed:  # a Lambda's error
        return _with_step(str(parsed["errorMessage"]), str(parsed.get("errorType") or error))
    if error == "QualityGateFailedError" and isinstance(parsed.get("gate"), Mapping):
        best = parsed.get("best") or {}
        return gate_message(parsed["gate"], best.get("objective_metric"))
    if error == "TuningJobFailedError":
        reason = parsed.get("failure_reason") or "no reason given"
        return _with_step(
            f"tuning job {parsed.get('name')} ended {parsed.get('status')}: {reason}", error
        )
    if error == "ModelPackageRejectedError":
        arn = parsed.get("model_package_arn")
        said = parsed.get("approval_description")
        why = f' ("{said}")' if said else ""
        return f"model version {arn} was rejected{why}; {NEXT_STEPS[error]}"
    if error == "ApprovalTimedOutError":
        arn = parsed.get("model_package_arn")
        return (
            f"nobody approved or rejected model version {arn} within approval_timeout_minutes; "
            f"approve it (python -m local approve {arn}, or aws sagemaker update-model-package) "
            f'and deploy it with the input {{"model_package_arn": "{arn}"}}'
        )
    if parsed.get("failure_reason"):
        return _with_step(str(parsed["failure_reason"]), error)
    if parsed.get("message"):
        return _with_step(str(parsed["message"]), error)
    return _with_step(cause or "", error)
