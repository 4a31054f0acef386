"""The local account creates the template's resources by type, idempotently,
and tells other programs how to reach it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from local.account.local_account import RESOURCE_CREATORS, ResourceContext, export_lines
from local.account.services import MOTO_SERVICES, endpoint_environment, register_moto_service
from stacks import asl

TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Leases": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "TableName": "mnist-ll-leases",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
                "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            },
        },
        "DataBucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
        "Logs": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": "/aws/vendedlogs/states/mnist-ll"},
        },
    }
}


def _create_all() -> dict[str, str]:
    resolver = asl.Resolver(TEMPLATE, "us-east-1", "123456789012")
    names = {}
    for logical_id, resource in TEMPLATE["Resources"].items():
        ctx = ResourceContext(
            logical_id, resource["Type"], resolver.resolve(resource["Properties"]), resolver
        )
        RESOURCE_CREATORS[resource["Type"]](ctx)
        names[logical_id] = ctx.physical_name
    return names


def test_template_resources_are_created_by_type_and_twice_is_fine(monkeypatch: Any) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # as the started account sets it
    with mock_aws():
        names = _create_all()
        _create_all()  # an account started again in the same process
        table = boto3.client("dynamodb", region_name="us-east-1").describe_table(
            TableName="mnist-ll-leases"
        )["Table"]
        assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
        ttl = boto3.client("dynamodb", region_name="us-east-1").describe_time_to_live(
            TableName="mnist-ll-leases"
        )["TimeToLiveDescription"]
        assert ttl["AttributeName"] == "expires_at"
        buckets = [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
        assert "databucket" in buckets
        topics = boto3.client("sns", region_name="us-east-1").list_topics()["Topics"]
        assert [t["TopicArn"] for t in topics] == [names["Topic"]]
        groups = boto3.client("logs", region_name="us-east-1").describe_log_groups()
        assert [g["logGroupName"] for g in groups["logGroups"]] == [
            "/aws/vendedlogs/states/mnist-ll"
        ]


def test_every_registered_service_gets_an_endpoint_variable() -> None:
    register_moto_service("Secrets Manager")
    try:
        env = endpoint_environment("http://127.0.0.1:1", "http://127.0.0.1:2")
        assert env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] == "http://127.0.0.1:1"
        for service in ("S3", "STS", "CLOUDWATCH_LOGS", "SNS", "SFN", "SCHEDULER", "DYNAMODB"):
            assert env[f"AWS_ENDPOINT_URL_{service}"] == "http://127.0.0.1:1"
        assert env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == "http://127.0.0.1:2"
    finally:
        MOTO_SERVICES.remove("SECRETS_MANAGER")


def test_export_lines_quote_values(tmp_path: Path) -> None:
    lines = export_lines({"B": "x y", "A": json.dumps({"k": 1})})
    assert lines == ["export A='{\"k\": 1}'", "export B='x y'"]
