"""One deploy at a time per endpoint: a lease in the stack's DynamoDB table.

Deploy :func:`acquire`s the endpoint's lease before it touches the endpoint
and Evaluate :func:`release`s it when the run is done with the endpoint. The
lease is one item per endpoint, written with a conditional put that succeeds
only if nobody holds it, the holder's lease has expired, or the holder is this
very execution (a retried Deploy). A crashed, aborted or timed-out execution
therefore never holds an endpoint for longer than ``endpoint_lease_seconds``;
the end-of-execution handling releases it sooner with :func:`release_held_by`.
The table's TTL attribute only tidies expired items (DynamoDB deletes them
lazily), so expiry is always checked in the condition itself.

The client is a plain boto3 DynamoDB client, passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from pipeline_core.awserrors import code_of, named_error
from pipeline_core.errors import EndpointBusyError

PARTITION_KEY = "pk"
HOLDER = "holder"
EXPIRES_AT = "expires_at"
#: The TTL attribute of the table (epoch seconds).
TTL_ATTRIBUTE = EXPIRES_AT
CONDITION_FAILED = "ConditionalCheckFailedException"

ACQUIRE_CONDITION = (
    f"attribute_not_exists({PARTITION_KEY}) OR {EXPIRES_AT} < :now OR {HOLDER} = :holder"
)
RELEASE_CONDITION = f"{HOLDER} = :holder"


def lease_key(endpoint_name: str) -> str:
    return f"endpoint#{endpoint_name}"


def acquire(
    ddb: Any,
    table: str,
    *,
    endpoint_name: str,
    holder: str,
    ttl_seconds: int,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Take (or renew, for the same holder) the endpoint's lease.

    Raises :class:`EndpointBusyError` naming the holder while another
    execution's lease is live."""
    now = int(clock())
    expires_at = now + int(ttl_seconds)
    try:
        ddb.put_item(
            TableName=table,
            Item={
                PARTITION_KEY: {"S": lease_key(endpoint_name)},
                HOLDER: {"S": holder},
                EXPIRES_AT: {"N": str(expires_at)},
                "acquired_at": {"N": str(now)},
            },
            ConditionExpression=ACQUIRE_CONDITION,
            ExpressionAttributeValues={":now": {"N": str(now)}, ":holder": {"S": holder}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as e:
        if code_of(e) != CONDITION_FAILED:
            raise named_error(e, "PutItem") from e
        old = e.response.get("Item") or {}
        other = old.get(HOLDER, {}).get("S")
        until = old.get(EXPIRES_AT, {}).get("N")
        raise EndpointBusyError(
            f"endpoint {endpoint_name} is being deployed by "
            + (f"execution {other}" if other else "another execution")
            + (f" (lease expires at epoch {until})" if until else "")
            + "; run again once that deployment ends, or choose another endpoint_name"
        ) from e
    return {"endpoint_name": endpoint_name, "holder": holder, "expires_at": expires_at}


def release(ddb: Any, table: str, *, endpoint_name: str, holder: str) -> bool:
    """Delete the lease if ``holder`` holds it. False if it was not held by it
    (already released, expired and taken over, or never taken)."""
    try:
        ddb.delete_item(
            TableName=table,
            Key={PARTITION_KEY: {"S": lease_key(endpoint_name)}},
            ConditionExpression=RELEASE_CONDITION,
            ExpressionAttributeValues={":holder": {"S": holder}},
        )
    except ClientError as e:
        if code_of(e) == CONDITION_FAILED:
            return False
        raise named_error(e, "DeleteItem") from e
    return True


@contextmanager
def held_for_deploy(
    ddb: Any,
    table: str,
    *,
    endpoint_name: str,
    holder: str,
    ttl_seconds: int,
    log: Callable[[str], None] = lambda _msg: None,
) -> Iterator[dict[str, Any]]:
    """Acquire the lease around a deploy. It stays held when the block succeeds
    (Evaluate releases it); if the block raises, nothing was sent to the endpoint
    yet, so it is released at once (a retried Deploy takes it again)."""
    lease = acquire(ddb, table, endpoint_name=endpoint_name, holder=holder, ttl_seconds=ttl_seconds)
    try:
        yield lease
    except BaseException:
        try:
            release(ddb, table, endpoint_name=endpoint_name, holder=holder)
        except Exception as e:  # expiry frees it anyway; the original error matters
            log(f"could not release the lease of {endpoint_name}: {e}")
        raise


def release_held_by(ddb: Any, table: str, *, holder: str) -> list[str]:
    """Release every lease ``holder`` holds; returns the endpoint names.

    For the end-of-execution handler, which knows the execution but not which
    endpoint it was deploying. The table holds one small item per endpoint, so
    a filtered scan is cheap. Needs ``dynamodb:Scan`` and ``dynamodb:DeleteItem``."""
    released: list[str] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "#h = :holder",
        "ExpressionAttributeNames": {"#h": HOLDER},
        "ExpressionAttributeValues": {":holder": {"S": holder}},
        "ProjectionExpression": PARTITION_KEY,
    }
    while True:
        try:
            page = ddb.scan(**kwargs)
        except ClientError as e:
            raise named_error(e, "Scan") from e
        for item in page.get("Items", []):
            key = str(item[PARTITION_KEY]["S"])
            endpoint = key.removeprefix("endpoint#")
            if release(ddb, table, endpoint_name=endpoint, holder=holder):
                released.append(endpoint)
        if "LastEvaluatedKey" not in page:
            return released
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
