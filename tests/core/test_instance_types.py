from __future__ import annotations

import dataclasses

import pytest

from pipeline_core.config import DEFAULTS, PipelineConfig
from pipeline_core.errors import InvalidConfigError
from pipeline_core.instance_types import instance_types, refusal


def test_the_lists_are_botocores_and_differ_by_role() -> None:
    assert "ml.c4.xlarge" in instance_types("training")
    assert "ml.c5.large" in instance_types("endpoint")
    assert "ml.c5.large" not in instance_types("training")
    assert "ml.c5.large" not in instance_types("transform")


def test_refusal_names_the_roles_a_type_belongs_to() -> None:
    assert refusal("training", "ml.m4.xlarge") is None
    assert refusal("training", "ml.c5.large") == (
        "ml.c5.large is not a SageMaker training instance type (it is a type for endpoint only)"
    )
    # A type no list knows may be newer than this botocore: allowed and IAM bound it.
    assert refusal("endpoint", "ml.nothing.xlarge") is None


def test_the_defaults_pass_the_check_their_import_skips() -> None:
    assert PipelineConfig().validate() == DEFAULTS
    for allowed in DEFAULTS.allowed_instance_types:
        assert refusal("endpoint", allowed) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [("training_instance_type", "ml.c5.large"), ("transform_instance_type", "ml.c5.large")],
)
def test_the_config_refuses_a_type_its_job_does_not_take(key: str, value: str) -> None:
    config = dataclasses.replace(DEFAULTS, **{key: value})
    with pytest.raises(InvalidConfigError, match=rf"^{key}: ml.c5.large is not a SageMaker"):
        config.validate()
    config.validate(sagemaker_types=False)
