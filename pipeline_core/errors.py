"""Named errors.

Step Functions catches Lambda errors by the exception's class name
(``errorType``), so every class name here is part of the state machine's
contract: rename one and the matching ``Catch`` must change too.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class for every error the pipeline raises on purpose."""


class InvalidInputError(PipelineError):
    """The execution input is malformed or out of range."""


class InvalidDatasetError(PipelineError):
    """The dataset cannot be trusted: bad container, structure, dtype or values."""


class SourceNotFoundError(PipelineError):
    """The dataset source object does not exist."""


class SourceAccessDeniedError(PipelineError):
    """The dataset source exists (or may exist) but we may not read it."""


class TuningJobFailedError(PipelineError):
    """The tuning job ended Failed or Stopped, or produced no best training job."""


class PollLimitExceededError(PipelineError):
    """A polling loop hit its bound before the resource reached a final state."""


class QualityGateFailedError(PipelineError):
    """The best training job's objective is worse than the configured gate."""


class EndpointDeploymentFailedError(PipelineError):
    """Creating or updating the endpoint failed; the previous config keeps serving."""


class ResourceLimitError(PipelineError):
    """An AWS quota was hit (ResourceLimitExceeded) after retries."""


class InvalidConfigError(PipelineError):
    """The stack configuration (cdk.json context) is invalid."""


class ThrottlingError(PipelineError):
    """AWS kept throttling a call after the client's own retries; retry later."""


class EndpointBusyError(PipelineError):
    """The endpoint is being created, updated or deleted by someone else."""


class NameCollisionError(PipelineError):
    """A Create call found the name taken by a resource that is not this
    execution's (other tags, or none): nothing was adopted or touched."""


class EvaluationError(PipelineError):
    """The endpoint's answers cannot be evaluated (wrong count or format)."""


class TooFewTrainObjectsError(PipelineError):
    """More training instances were asked for than there are train objects to
    shard between them (``ShardedByS3Key`` would leave an instance idle)."""


class ShardConversionError(PipelineError):
    """The conversion Map failed without a shard saying why (e.g. retries ran out)."""


class InstanceTypeUnavailableError(PipelineError):
    """The region does not offer the instance type a job or endpoint asked for."""


class TransformJobFailedError(PipelineError):
    """The Batch Transform job (endpoint mode ``none``) ended Failed or Stopped."""


class ModelPackageRejectedError(PipelineError):
    """A person rejected the registered model version (manual approval)."""


class ModelPackageNotApprovedError(PipelineError):
    """The model version to deploy (input ``model_package_arn``) is not Approved."""


class ModelTestDataMissingError(PipelineError):
    """The registered version's test data (its run's test split or manifest)
    is gone, so deploying it again could not be evaluated."""


class ApprovalTimedOutError(PipelineError):
    """Nobody approved or rejected the model version within the approval timeout."""


class EndpointUpdateRolledBackError(PipelineError):
    """The blue/green update was rolled back (an alarm fired); the old config serves."""
