"""The endpoint leases: one DynamoDB item per endpoint being deployed to."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from pipeline_core.lease import PARTITION_KEY, TTL_ATTRIBUTE


class EndpointLeases(Construct):
    """On-demand table, no fixed name (a retained one never blocks a redeploy),
    with the lease expiry as its TTL attribute. It only ever holds live leases,
    so it is destroyed with the stack whatever the removal policy. Items hold
    only endpoint and execution names, under DynamoDB's default encryption."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(
                name=PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=TTL_ATTRIBUTE,
            # Billed by table size, which is a few items: nothing to acknowledge away.
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )
