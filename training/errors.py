"""Named errors of the local Linear Learner.

Each one says which input was wrong, so the CLI, the tuner and the local
SageMaker stand-in can report it as SageMaker would (``FailureReason``).
"""

from __future__ import annotations


class TrainingError(Exception):
    """Base class for every error the local Linear Learner raises on purpose."""


class HyperparameterError(TrainingError, ValueError):
    """A hyperparameter is unknown, malformed or out of range; the message names it."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"hyperparameter '{name}': {message}")
        self.name = name


class DataChannelError(TrainingError, ValueError):
    """A data channel is missing, empty or not valid recordIO-protobuf."""


class ModelArtifactError(TrainingError, ValueError):
    """A ``model.tar.gz`` is missing, corrupt or of an unsupported version."""


class TuningRequestError(TrainingError, ValueError):
    """A CreateHyperParameterTuningJob request cannot be run locally."""


class DistributedTrainingError(TrainingError):
    """A worker of a multi-instance job failed, or the data cannot be shared out."""


class PayloadError(TrainingError, ValueError):
    """An inference request body cannot be parsed (HTTP 400/415/406/413)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
