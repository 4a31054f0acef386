"""Adopt only your own: what a Create call that finds its name taken may do.

Names derive from the execution name and the deployment's salt, so a resource
already under that name is normally this execution's own (a retried step).
It is adopted only if its tags prove it: this stack, this deployment and this
execution. Anything else is a :class:`NameCollisionError`, and nothing is touched.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from pipeline_core.awserrors import named_error
from pipeline_core.errors import NameCollisionError
from pipeline_core.names import carries_tags, tags_to_dict


def adopt_or_collide(
    sm: Any, kind: str, name: str, arn: str, expected_tags: list[dict[str, str]]
) -> None:
    """A Create call said ``name`` exists: adopt it only if its tags are this
    run's (stack, deployment, execution); raise :class:`NameCollisionError` otherwise."""
    try:
        tags = tags_to_dict(sm.list_tags(ResourceArn=arn).get("Tags"))
    except ClientError as e:
        raise named_error(e, "ListTags") from e
    if not carries_tags(tags, expected_tags):
        want = ", ".join(f"{t['Key']}={t['Value']}" for t in expected_tags)
        raise NameCollisionError(
            f"{kind} {name} already exists but is not this execution's (expected tags {want}); "
            "it was left untouched; look at its tags, then choose another endpoint_name or "
            "delete it if nothing needs it"
        )
