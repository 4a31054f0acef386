"""The endpoint lease: a conditional write in DynamoDB (moto evaluates the conditions)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pipeline_testlib import REGION

from pipeline_core.errors import EndpointBusyError
from pipeline_core.lease import (
    PARTITION_KEY,
    acquire,
    held_for_deploy,
    lease_key,
    release,
    release_held_by,
)

TABLE = "leases"
EP = "mnist-ll-alpha-endpoint"


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _take(ddb: Any, holder: str, at: float, endpoint: str = EP, ttl: int = 600) -> Any:
    return acquire(
        ddb, TABLE, endpoint_name=endpoint, holder=holder, ttl_seconds=ttl, clock=lambda: at
    )


def _holder(ddb: Any, endpoint: str = EP) -> str | None:
    item = ddb.get_item(TableName=TABLE, Key={PARTITION_KEY: {"S": lease_key(endpoint)}})
    return item.get("Item", {}).get("holder", {}).get("S")


def test_a_second_execution_is_refused_while_the_first_holds_the_endpoint(ddb: Any) -> None:
    assert _take(ddb, "exec-a", 1000)["expires_at"] == 1600
    with pytest.raises(EndpointBusyError, match=f"{EP} is being deployed by execution exec-a"):
        _take(ddb, "exec-b", 1001)
    assert _holder(ddb) == "exec-a"


def test_the_holder_may_take_its_lease_again_on_a_retry(ddb: Any) -> None:
    _take(ddb, "exec-a", 1000)
    assert _take(ddb, "exec-a", 1100)["expires_at"] == 1700


def test_an_expired_lease_is_taken_over(ddb: Any) -> None:
    """A crashed holder never keeps the endpoint past the expiry (TTL deletion is lazy)."""
    _take(ddb, "crashed", 1000, ttl=60)
    with pytest.raises(EndpointBusyError):
        _take(ddb, "exec-b", 1060)
    _take(ddb, "exec-b", 1061)
    assert _holder(ddb) == "exec-b"


def test_leases_of_different_endpoints_are_independent(ddb: Any) -> None:
    _take(ddb, "exec-a", 1000)
    _take(ddb, "exec-b", 1000, endpoint="mnist-ll-beta-endpoint")
    assert _holder(ddb) == "exec-a" and _holder(ddb, "mnist-ll-beta-endpoint") == "exec-b"


def test_release_deletes_only_the_holders_lease(ddb: Any) -> None:
    _take(ddb, "exec-a", 1000)
    assert release(ddb, TABLE, endpoint_name=EP, holder="exec-b") is False
    assert _holder(ddb) == "exec-a"
    assert release(ddb, TABLE, endpoint_name=EP, holder="exec-a") is True
    assert _holder(ddb) is None
    assert release(ddb, TABLE, endpoint_name=EP, holder="exec-a") is False  # idempotent
    _take(ddb, "exec-b", 1001)  # free for the next one


def test_release_held_by_frees_every_endpoint_of_an_execution_and_nothing_else(ddb: Any) -> None:
    _take(ddb, "exec-a", 1000)
    _take(ddb, "exec-a", 1000, endpoint="mnist-ll-blue")
    _take(ddb, "exec-b", 1000, endpoint="mnist-ll-green")
    assert sorted(release_held_by(ddb, TABLE, holder="exec-a")) == [EP, "mnist-ll-blue"]
    assert _holder(ddb) is None and _holder(ddb, "mnist-ll-green") == "exec-b"
    assert release_held_by(ddb, TABLE, holder="exec-a") == []


def test_held_for_deploy_keeps_the_lease_on_success_and_frees_it_on_failure(ddb: Any) -> None:
    with held_for_deploy(ddb, TABLE, endpoint_name=EP, holder="exec-a", ttl_seconds=600):
        pass
    assert _holder(ddb) == "exec-a"  # Evaluate releases it
    release(ddb, TABLE, endpoint_name=EP, holder="exec-a")
    with (
        pytest.raises(RuntimeError, match="boom"),
        held_for_deploy(ddb, TABLE, endpoint_name=EP, holder="exec-a", ttl_seconds=600),
    ):
        raise RuntimeError("boom")
    assert _holder(ddb) is None
