"""The data bucket (and the bucket that receives its access logs)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

#: Every object an execution writes lives under this prefix.
RUNS_PREFIX = "runs/"


class DataStorage(Construct):
    """Private, SSL-only, encrypted bucket with server access logging."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: RemovalPolicy,
        auto_delete_objects: bool,
        encryption_key: kms.IKey | None,
        access_log_retention_days: int = 90,
    ) -> None:
        super().__init__(scope, construct_id)
        # S3 server access logs can only be delivered to an SSE-S3 bucket.
        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=removal_policy,
            auto_delete_objects=auto_delete_objects,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(access_log_retention_days))],
        )
        self.bucket = s3.Bucket(
            self,
            "Data",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=(
                s3.BucketEncryption.KMS if encryption_key else s3.BucketEncryption.S3_MANAGED
            ),
            encryption_key=encryption_key,
            bucket_key_enabled=encryption_key is not None,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="data-bucket/",
            removal_policy=removal_policy,
            auto_delete_objects=auto_delete_objects,
            lifecycle_rules=[
                s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(1))
            ],
        )

    def manifests_arn(self) -> str:
        """ARN pattern of every run's ``data/manifest.json``."""
        return self.bucket.arn_for_objects(f"{RUNS_PREFIX}*/data/manifest.json")

    def runs_arn(self) -> str:
        """ARN pattern of every object under ``runs/``."""
        return self.bucket.arn_for_objects(f"{RUNS_PREFIX}*")
