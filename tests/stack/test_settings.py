"""Context validation: bad values raise InvalidConfigError naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline_core.config import PipelineConfig
from pipeline_core.errors import InvalidConfigError
from stacks.settings import StackSettings
from tests.stack.helpers import cdk_json_context, synth


def test_cdk_json_gives_the_documented_defaults() -> None:
    settings = StackSettings.from_context(cdk_json_context())
    assert settings.pipeline == PipelineConfig()
    assert settings.removal_policy == "destroy"
    assert settings.auto_delete_objects is True
    assert settings.enable_kms is False
    assert settings.notification_email is None
    assert settings.log_retention_days == 30


def test_pipeline_context_overlays_defaults() -> None:
    settings = StackSettings.from_context(
        {"pipeline": {"max_jobs": 10, "training_instance_type": "ml.m5.large"}}
    )
    assert settings.pipeline.max_jobs == 10
    assert settings.pipeline.training_instance_type == "ml.m5.large"
    assert settings.pipeline.max_parallel_jobs == PipelineConfig().max_parallel_jobs


@pytest.mark.parametrize(
    ("context", "names"),
    [
        ({"pipeline": {"training_instance_type": "c4.xlarge"}}, "training_instance_type"),
        ({"pipeline": {"endpoint_instance_type": "ml.m4"}}, "endpoint_instance_type"),
        ({"pipeline": {"objective_metric": "validation:mse"}}, "objective_metric"),
        ({"pipeline": {"max_jobs": 2, "max_parallel_jobs": 3}}, "max_parallel_jobs"),
        ({"pipeline": {"no_such_key": 1}}, "no_such_key"),
        (
            {
                "pipeline": {
                    "ranges": [
                        {"name": "epochs", "kind": "Integer", "min_value": 1, "max_value": 5}
                    ]
                }
            },
            "epochs",
        ),
        ({"pipeline": {"extra_static_hyperparameters": {"los": "hinge_loss"}}}, "los: not a"),
        (
            {"pipeline": {"extra_static_hyperparameters": {"feature_dim": "10"}}},
            "feature_dim: set it with the pipeline key",
        ),
        ({"pipeline": {"extra_static_hyperparameters": {"epochs": 5}}}, "strings to strings"),
        (
            {"pipeline": {"extra_static_hyperparameters": {"mini_batch_size": "50"}}},
            "mini_batch_size: set it with the pipeline key",
        ),
        ({"removal_policy": "snapshot"}, "removal_policy"),
        ({"removal_policy": "retain", "auto_delete_objects": True}, "auto_delete_objects"),
        ({"auto_delete_objects": "yes"}, "auto_delete_objects"),
        ({"enable_kms": 1}, "enable_kms"),
        ({"log_retention_days": 10}, "log_retention_days"),
        ({"log_retention_days": True}, "log_retention_days"),
        ({"notification_email": "not-an-email"}, "notification_email"),
        ({"stack_name": "9-lives"}, "stack_name"),
        ({"stack_name": "under_score"}, "stack_name"),
        ({"execution_timeout_hours": 0}, "execution_timeout_hours"),
    ],
)
def test_invalid_context_raises_named_error(context: dict[str, Any], names: str) -> None:
    with pytest.raises(InvalidConfigError, match=names):
        StackSettings.from_context(context)


def test_the_approval_wait_must_end_well_before_the_execution_times_out() -> None:
    """A WaitForApproval longer than the execution could never end in
    ApprovalTimedOut: the execution would time out first, mid-wait."""
    with pytest.raises(InvalidConfigError) as caught:
        StackSettings.from_context(
            {"execution_timeout_hours": 6, "pipeline": {"approval_timeout_minutes": 7 * 60}}
        )
    message = str(caught.value)
    assert "approval_timeout_minutes (420)" in message
    assert "execution_timeout_hours (6" in message
    with pytest.raises(InvalidConfigError, match="at most 30 or raise execution_timeout_hours"):
        StackSettings.from_context(
            {"execution_timeout_hours": 1, "pipeline": {"approval_timeout_minutes": 31}}
        )
    # half an hour of the execution is left for the rest of the run
    ok = StackSettings.from_context(
        {"execution_timeout_hours": 1, "pipeline": {"approval_timeout_minutes": 30}}
    )
    assert ok.pipeline.approval_timeout_minutes == 30


def test_extra_static_hyperparameters_name_documented_linear_learner_ones() -> None:
    from pipeline_core.config import LINEAR_LEARNER_HYPERPARAMETERS
    from training.hyperparameters import IGNORED_FOR_BINARY, INTERNAL, SUPPORTED

    # the config's list and the local algorithm's agree (SageMaker's internal names aside)
    assert LINEAR_LEARNER_HYPERPARAMETERS == (SUPPORTED - INTERNAL) | set(IGNORED_FOR_BINARY)
    settings = StackSettings.from_context(
        {"pipeline": {"extra_static_hyperparameters": {"loss": "hinge_loss", "margin": "2"}}}
    )
    assert settings.pipeline.static_hyperparameters() == {
        "feature_dim": "784",
        "predictor_type": "binary_classifier",
        "loss": "hinge_loss",
        "margin": "2",
    }


def test_app_refuses_to_synthesize_a_bad_context() -> None:
    with pytest.raises(InvalidConfigError, match="training_instance_type"):
        synth({"pipeline": {"training_instance_type": "gpu-please"}})


def test_null_and_empty_values_mean_default() -> None:
    settings = StackSettings.from_context(
        {"notification_email": "", "enable_kms": None, "pipeline": None}
    )
    assert settings.notification_email is None
    assert settings.enable_kms is False
    assert settings.pipeline == PipelineConfig()
