"""Check an execution input before anything starts.

The local run resolves its input with the validator ValidateInput runs
(:func:`pipeline_core.inputs.resolve_run`), against the pipeline config the
synth would embed (``cdk.json``'s ``pipeline`` context with the local
overrides), so a misspelt key fails in about a second, before the account
starts or a run folder is written. ValidateInput checks the same input again
in the execution; this check only answers earlier.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline_core.config import PipelineConfig
from pipeline_core.errors import InvalidConfigError, InvalidInputError
from pipeline_core.inputs import RunSpec, resolve_run
from pipeline_core.names import default_endpoint_name, model_package_group_name

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STACK_NAME = "MnistLinearLearnerPipeline"
#: Stands in for the stack's bucket, which the check does not know yet.
CHECK_BUCKET = "mnist-ll-input-check"


class InputCheckError(ValueError):
    """The execution input would fail ValidateInput (``InvalidInput``)."""


def synth_context(root: Path = ROOT) -> dict[str, Any]:
    """``cdk.json``'s context, as the CDK CLI hands it to ``app.py``."""
    path = root / "cdk.json"
    if not path.exists():
        return {}
    context: dict[str, Any] = json.loads(path.read_text()).get("context", {})
    return context


def local_config(
    root: Path = ROOT, overrides: Mapping[str, Any] | None = None
) -> tuple[PipelineConfig, str]:
    """The pipeline config and stack name the synth would use, with the local
    run's overrides (short waits) laid over the config."""
    context = synth_context(root)
    raw = context.get("pipeline") or {}
    try:
        config = PipelineConfig.from_mapping({**raw, **dict(overrides or {})})
    except InvalidConfigError as e:
        raise InputCheckError(f"cdk.json pipeline: {e}") from e
    return config, str(context.get("stack_name") or DEFAULT_STACK_NAME)


def check_input(
    execution_input: Any,
    execution_name: str,
    *,
    root: Path = ROOT,
    overrides: Mapping[str, Any] | None = None,
    region: str = "us-east-1",
) -> RunSpec:
    """Resolve the input as ValidateInput would; :class:`InputCheckError` with
    ValidateInput's message (which names the key) when it would fail."""
    config, stack_name = local_config(root, overrides)
    try:
        return resolve_run(
            execution_input,
            execution_name=execution_name,
            config=config,
            bucket=CHECK_BUCKET,
            region=region,
            default_endpoint_name=default_endpoint_name(config.name_prefix, stack_name),
            stack_tag=stack_name,
            allow_local_sources=True,
            model_package_group=model_package_group_name(config.name_prefix, stack_name),
        )
    except InvalidInputError as e:
        raise InputCheckError(str(e)) from e
