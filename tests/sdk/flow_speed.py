"""The SDK flows' two speed knobs, both off unless the suite turns them on.

Imported by ``tutorial_flow.py`` and ``tutorial_flow_v3.py`` (in ``.venv-sdk``
and ``.venv-sdk3``) before the SDK: standard library and ``jsonschema`` only.

- ``FLOW_FAST_SLEEP=1`` shortens the SDK's polling sleeps to 0.2 s (its waiters
  sleep 5-30 s between describes).
- ``FLOW_SCHEMA_CHECKED_ONCE=1`` checks each JSON schema against its
  metaschema once. Both SDKs validate the config file named by
  ``SAGEMAKER_USER_CONFIG_OVERRIDE`` at every config lookup with
  ``jsonschema.validate``, which checks the SDK's own schema (a constant)
  against the 2020-12 metaschema before it validates the config: about 0.2 s a
  lookup, over a hundred lookups a flow, three quarters of the v2 flow's CPU.
  The config itself is still validated at every lookup, and a bad config or a
  bad schema still raises what ``jsonschema.validate`` raises.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


def fast_sleep(cap: float = 0.2) -> None:
    sleep = time.sleep
    time.sleep = lambda seconds: sleep(min(seconds, cap))


def check_each_schema_once() -> None:
    """Make ``jsonschema.validate`` check a schema it has checked before no more."""
    import jsonschema
    from jsonschema import exceptions, validators

    checked: set[tuple[type, str]] = set()

    def validate(instance: Any, schema: Any, cls: Any = None, *args: Any, **kwargs: Any) -> None:
        if cls is None:
            cls = validators.validator_for(schema)
        key = (cls, json.dumps(schema, sort_keys=True, default=repr))
        if key not in checked:
            cls.check_schema(schema)  # raises SchemaError, as jsonschema.validate does
            checked.add(key)
        error = exceptions.best_match(cls(schema, *args, **kwargs).iter_errors(instance))
        if error is not None:
            raise error

    jsonschema.validate = validate


def apply(environ: dict[str, str] | None = None) -> None:
    env = os.environ if environ is None else environ
    if env.get("FLOW_FAST_SLEEP") == "1":
        fast_sleep()
    if env.get("FLOW_SCHEMA_CHECKED_ONCE") == "1":
        check_each_schema_once()
