"""Which SageMaker instance types each kind of job accepts, from botocore's model.

SageMaker keeps three lists: ``TrainingInstanceType`` (training and tuning
jobs), ``ProductionVariantInstanceType`` (real-time endpoints) and
``TransformInstanceType`` (batch transform). They differ: ``ml.c5.large`` serves
an endpoint but trains nothing, and CreateHyperParameterTuningJob refuses it
with a ValidationException after the data has been converted. The input and
config checks ask here first, so such a run fails at ValidateInput (or at
synth) before anything costs. The lists are read from the botocore that ships
with the Lambda runtime and the CDK app, once per process (ValidateInput and
``cdk synth``; the other Lambdas take the synthesized config as checked).
"""

from __future__ import annotations

import functools
from typing import Literal

Role = Literal["training", "endpoint", "transform"]

#: The botocore shape of each role's instance type.
SHAPES: dict[Role, str] = {
    "training": "TrainingInstanceType",
    "endpoint": "ProductionVariantInstanceType",
    "transform": "TransformInstanceType",
}


@functools.cache
def _lists() -> dict[Role, frozenset[str]]:
    """All three lists, from one read of SageMaker's service model."""
    import botocore.session

    # botocore.session's loader factory: where a process shares one loader
    # (the local account), the model its clients parsed is not parsed again.
    loader = botocore.session.create_loader()
    shapes = loader.load_service_model("sagemaker", "service-2")["shapes"]
    return {role: frozenset(shapes[shape]["enum"]) for role, shape in SHAPES.items()}


def instance_types(role: Role) -> frozenset[str]:
    """The instance types SageMaker accepts for ``role`` (botocore's enum)."""
    return _lists()[role]


def refusal(role: Role, instance_type: str) -> str | None:
    """Why SageMaker would refuse ``instance_type`` for ``role``, or None.

    Only a type botocore lists for another kind of job is refused: a type no
    list knows may be newer than this botocore, and the stack's
    ``allowed_instance_types`` and IAM bound it anyway."""
    if instance_type in instance_types(role):
        return None
    others = [other for other in SHAPES if other != role and instance_type in instance_types(other)]
    if not others:
        return None
    return (
        f"{instance_type} is not a SageMaker {role} instance type "
        f"(it is a type for {' and '.join(others)} only)"
    )
