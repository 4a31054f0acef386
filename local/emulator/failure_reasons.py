"""``FailureReason`` as SageMaker's built-in algorithms word it.

A built-in algorithm tells the customer's mistakes (bad data, a bad
hyperparameter, an unreadable model) from its own failures: the first start
with ``ClientError: ``, the others with ``AlgorithmError: ``. The local Linear
Learner raises named errors (:mod:`training.errors`); this maps them.
"""

from __future__ import annotations

#: Errors the customer's input causes (training.errors and local.emulator.channels).
CUSTOMER_ERRORS = frozenset(
    {
        "ChannelError",
        "DataChannelError",
        "HyperparameterError",
        "ModelArtifactError",
        "PayloadError",
        "TuningRequestError",
    }
)
#: Prefixes SageMaker itself uses; a reason that has one is kept as it is.
KNOWN_PREFIXES = (
    "ClientError: ",
    "AlgorithmError: ",
    "InternalServerError: ",
    "MaxRuntimeExceeded",
)


def failure_reason(error_type: str, message: str) -> str:
    """The ``FailureReason`` of a job that failed with ``error_type: message``
    (at most 1024 characters, the shape's limit): ``ClientError: `` for the
    customer's errors, the error's own name otherwise."""
    if message.startswith(KNOWN_PREFIXES):
        return message[:1024]
    prefix = "ClientError" if error_type in CUSTOMER_ERRORS else error_type
    return f"{prefix}: {message}"[:1024]


def reworded(reason: str | None) -> str | None:
    """A ``<Type>: <message>`` reason reworded by :func:`failure_reason`."""
    if not reason or reason.startswith(KNOWN_PREFIXES):
        return reason
    error_type, sep, message = reason.partition(": ")
    if sep and (error_type in CUSTOMER_ERRORS or message.startswith(KNOWN_PREFIXES)):
        return failure_reason(error_type, message)
    return reason


def with_reworded(summary: dict[str, object]) -> dict[str, object]:
    """A training job summary whose ``FailureReason`` is :func:`reworded`."""
    reason = summary.get("FailureReason")
    if not isinstance(reason, str) or reworded(reason) == reason:
        return summary
    return {**summary, "FailureReason": reworded(reason)}
