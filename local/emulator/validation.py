"""Server-side request validation driven by botocore's service model.

Every request to the local SageMaker is checked against the operation's
input shape before anything happens, as the real service does: required
members, types, string/list/map lengths (``min``/``max``), numeric ranges,
``pattern`` (full match, as Java's ``matches``) and ``enum``. One walker
covers every operation; nothing is listed by hand. A violation is a
``ValidationException`` worded like AWS's::

    1 validation error detected: Value 'a_b' at 'hyperParameterTuningJobName'
    failed to satisfy constraint: Member must satisfy regular expression
    pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}

A member of the wrong type is a ``SerializationException``, as AWS's JSON
protocol answers it. On top, the Linear Learner rules the real service
applies to its image: the objective metric must be one the algorithm emits,
and channel names must be ones it reads.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import regex
from botocore.loaders import Loader

from local.emulator.errors import ServiceError
from training.tuner import OBJECTIVE_METRICS

#: How many violations one message lists (AWS stops at a handful too).
MAX_REPORTED = 10
LINEAR_LEARNER_CHANNELS = ("train", "validation", "test")


@functools.cache
def service_model(service: str = "sagemaker") -> dict[str, Any]:
    model: dict[str, Any] = Loader().load_service_model(service, "service-2")
    return model


@functools.cache
def _pattern(text: str) -> Any:
    try:
        return regex.compile(text)
    except regex.error:
        return None  # a Java-only construct: not checked rather than wrongly rejected


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Walker:
    def __init__(self, shapes: Mapping[str, Any], *, strict_members: bool = False) -> None:
        self.shapes = shapes
        #: Report members the shape does not have (for checking responses).
        self.strict_members = strict_members
        self.errors: list[str] = []
        self.type_errors: list[str] = []

    def fail(self, value: Any, path: str, constraint: str) -> None:
        shown = "null" if value is None else _value_text(value)
        self.errors.append(
            f"Value '{shown}' at '{path}' failed to satisfy constraint: {constraint}"
        )

    def walk(self, shape_name: str, value: Any, path: str) -> None:
        shape = self.shapes[shape_name]
        kind = shape.get("type")
        if kind == "structure":
            self.structure(shape, value, path)
        elif kind == "list":
            self.sequence(shape, value, path)
        elif kind == "map":
            self.mapping(shape, value, path)
        elif kind == "string":
            self.string(shape, value, path)
        elif kind in ("integer", "long", "float", "double"):
            self.number(shape, value, path, integer=kind in ("integer", "long"))
        elif kind == "boolean":
            if not isinstance(value, bool):
                self.type_errors.append(f"{path}: expected a boolean")
        elif kind == "timestamp":
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                self.type_errors.append(f"{path}: expected a timestamp")
        elif kind == "blob" and not isinstance(value, str):
            self.type_errors.append(f"{path}: expected base64 text")

    def structure(self, shape: Mapping[str, Any], value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.type_errors.append(f"{path or 'request'}: expected an object")
            return
        members: Mapping[str, Any] = shape.get("members", {})
        prefix = f"{path}." if path else ""
        for name in shape.get("required", []):
            if value.get(name) is None:
                self.fail(None, prefix + _camel(name), "Member must not be null")
        for name, item in value.items():
            if name not in members:
                # AWS's JSON protocol ignores unknown members in requests.
                if self.strict_members:
                    self.type_errors.append(f"{prefix}{_camel(name)}: not a member")
                continue
            if item is None:
                continue
            self.walk(members[name]["shape"], item, prefix + _camel(name))

    def sequence(self, shape: Mapping[str, Any], value: Any, path: str) -> None:
        if not isinstance(value, list):
            self.type_errors.append(f"{path}: expected a list")
            return
        self.length(shape, value, len(value), path)
        for i, item in enumerate(value):
            self.walk(shape["member"]["shape"], item, f"{path}.{i + 1}.member")

    def mapping(self, shape: Mapping[str, Any], value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.type_errors.append(f"{path}: expected a map")
            return
        self.length(shape, value, len(value), path)
        for key, item in value.items():
            self.walk(shape["key"]["shape"], key, f"{path}.{key}.key")
            self.walk(shape["value"]["shape"], item, f"{path}.{key}.member")

    def length(self, shape: Mapping[str, Any], value: Any, size: int, path: str) -> None:
        shown = value if isinstance(value, str) else f"[{', '.join(map(str, value))}]"
        if "max" in shape and size > shape["max"]:
            self.fail(shown, path, f"Member must have length less than or equal to {shape['max']}")
        if "min" in shape and size < shape["min"]:
            self.fail(
                shown, path, f"Member must have length greater than or equal to {shape['min']}"
            )

    def string(self, shape: Mapping[str, Any], value: Any, path: str) -> None:
        if not isinstance(value, str):
            self.type_errors.append(f"{path}: expected a string")
            return
        self.length(shape, value, len(value), path)
        if "enum" in shape and value not in shape["enum"]:
            self.fail(
                value, path, f"Member must satisfy enum value set: [{', '.join(shape['enum'])}]"
            )
        if "pattern" in shape:
            compiled = _pattern(shape["pattern"])
            if compiled is not None and compiled.fullmatch(value) is None:
                self.fail(
                    value,
                    path,
                    f"Member must satisfy regular expression pattern: {shape['pattern']}",
                )

    def number(self, shape: Mapping[str, Any], value: Any, path: str, *, integer: bool) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and integer and isinstance(value, float) and not value.is_integer():
            ok = False
        if not ok or (isinstance(value, float) and not math.isfinite(value)):
            self.type_errors.append(f"{path}: expected {'an integer' if integer else 'a number'}")
            return
        if "max" in shape and value > shape["max"]:
            self.fail(value, path, f"Member must have value less than or equal to {shape['max']}")
        if "min" in shape and value < shape["min"]:
            self.fail(
                value, path, f"Member must have value greater than or equal to {shape['min']}"
            )


def validate_request(operation: str, params: Any, service: str = "sagemaker") -> None:
    """Raise :class:`ServiceError` if ``params`` break ``operation``'s input shape."""
    model = service_model(service)
    op = model["operations"].get(operation)
    if op is None or "input" not in op:
        return
    walker = _Walker(model["shapes"])
    walker.walk(op["input"]["shape"], params, "")
    if walker.type_errors:
        raise ServiceError("SerializationException", "; ".join(walker.type_errors[:MAX_REPORTED]))
    if walker.errors:
        count = len(walker.errors)
        noun = "error" if count == 1 else "errors"
        raise ServiceError(
            "ValidationException",
            f"{count} validation {noun} detected: " + "; ".join(walker.errors[:MAX_REPORTED]),
        )
    check = _ALGORITHM_RULES.get(operation)
    if check is not None:
        check(params)


def response_errors(operation: str, result: Any, service: str = "sagemaker") -> list[str]:
    """Where ``result`` (the JSON a local operation answers) breaks the
    operation's *output* shape: required members, types, lengths, ranges,
    patterns and enums. Empty when it is shaped as AWS shapes it."""
    model = service_model(service)
    op = model["operations"].get(operation)
    if op is None or "output" not in op:
        return [] if not result else [f"{operation} has no output shape, got {sorted(result)}"]
    walker = _Walker(model["shapes"], strict_members=True)
    walker.walk(op["output"]["shape"], result, "")
    return walker.type_errors + walker.errors


def _is_linear_learner(algorithm: Mapping[str, Any] | None) -> bool:
    image = str((algorithm or {}).get("TrainingImage", ""))
    return "/linear-learner:" in image or image.endswith("/linear-learner")


def _check_channels(channels: Any, where: str) -> None:
    for channel in channels or []:
        name = channel.get("ChannelName")
        if name not in LINEAR_LEARNER_CHANNELS:
            raise ServiceError(
                "ValidationException",
                f"The channel name [{name}] in {where} is not supported by the algorithm "
                f"linear-learner. Supported channels: {list(LINEAR_LEARNER_CHANNELS)}.",
            )
    names = [c.get("ChannelName") for c in channels or []]
    if channels and "train" not in names:
        raise ServiceError(
            "ValidationException",
            f"The algorithm linear-learner requires the channel [train] in {where}.",
        )


def _tuning_rules(params: Mapping[str, Any]) -> None:
    definition = params.get("TrainingJobDefinition") or {}
    if not _is_linear_learner(definition.get("AlgorithmSpecification")):
        return
    objective = params["HyperParameterTuningJobConfig"].get("HyperParameterTuningJobObjective")
    metric = (objective or {}).get("MetricName")
    if metric is not None and metric not in OBJECTIVE_METRICS:
        raise ServiceError(
            "ValidationException",
            f"The objective metric type [{metric}] is not supported by the algorithm "
            f"linear-learner. Supported objective metrics: {sorted(OBJECTIVE_METRICS)}.",
        )
    _check_channels(definition.get("InputDataConfig"), "TrainingJobDefinition.InputDataConfig")


def _training_rules(params: Mapping[str, Any]) -> None:
    if _is_linear_learner(params.get("AlgorithmSpecification")):
        _check_channels(params.get("InputDataConfig"), "InputDataConfig")


_ALGORITHM_RULES = {
    "CreateHyperParameterTuningJob": _tuning_rules,
    "CreateTrainingJob": _training_rules,
}
