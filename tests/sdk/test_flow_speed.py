"""The SDK flows' speed knobs change how often work is done, never its outcome."""

from __future__ import annotations

import time
from typing import Any

import jsonschema
import pytest
from jsonschema import Draft202012Validator, exceptions

from tests.sdk import flow_speed

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"DefaultS3Bucket": {"type": "string", "minLength": 3}},
    "additionalProperties": False,
}


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each schema jsonschema checks against its metaschema; the patched
    ``jsonschema.validate`` and ``time.sleep`` are restored afterwards."""
    monkeypatch.setattr(jsonschema, "validate", jsonschema.validate)
    monkeypatch.setattr(time, "sleep", time.sleep)
    seen: list[Any] = []
    original = Draft202012Validator.check_schema

    def counting(cls: type, schema: Any, **kwargs: Any) -> None:
        seen.append(schema)
        original(schema, **kwargs)

    monkeypatch.setattr(Draft202012Validator, "check_schema", classmethod(counting))
    return seen


def test_off_by_default(checks: list[Any]) -> None:
    flow_speed.apply({})
    for _ in range(3):
        jsonschema.validate({"DefaultS3Bucket": "bucket"}, SCHEMA)
    assert len(checks) == 3  # jsonschema's own: the schema at every call


def test_each_schema_is_checked_once_and_every_instance_still_validated(
    checks: list[Any],
) -> None:
    flow_speed.apply({"FLOW_SCHEMA_CHECKED_ONCE": "1"})
    for _ in range(3):
        jsonschema.validate({"DefaultS3Bucket": "bucket"}, SCHEMA)
    assert len(checks) == 1
    with pytest.raises(exceptions.ValidationError, match="too short"):
        jsonschema.validate({"DefaultS3Bucket": "b"}, SCHEMA)
    with pytest.raises(exceptions.ValidationError, match="Additional properties"):
        jsonschema.validate({"Other": 1}, SCHEMA)
    other = {**SCHEMA, "required": ["DefaultS3Bucket"]}  # another schema: checked too
    with pytest.raises(exceptions.ValidationError, match="required"):
        jsonschema.validate({}, other)
    assert len(checks) == 2


def test_a_bad_schema_still_raises_every_time(checks: list[Any]) -> None:
    flow_speed.apply({"FLOW_SCHEMA_CHECKED_ONCE": "1"})
    bad = {"$schema": SCHEMA["$schema"], "type": "no-such-type"}
    for _ in range(2):
        with pytest.raises(exceptions.SchemaError):
            jsonschema.validate({}, bad)


def test_fast_sleep_caps_the_sdk_sleeps(checks: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    flow_speed.apply({"FLOW_FAST_SLEEP": "1"})
    time.sleep(30)
    time.sleep(0.05)
    assert slept == [0.2, 0.05]
