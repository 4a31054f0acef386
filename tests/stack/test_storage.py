"""The data bucket: private, SSL-only, encrypted, logged, removal configurable."""

from __future__ import annotations

from aws_cdk.assertions import Match

from tests.stack.conftest import Synth


def _data_bucket(s: Synth) -> tuple[str, dict]:
    lid = s.stack.get_logical_id(s.stack.storage.bucket.node.default_child)
    return lid, s.json["Resources"][lid]


def test_bucket_policy_denies_requests_without_tls(synthesized: Synth) -> None:
    lid, _ = _data_bucket(synthesized)
    synthesized.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": lid},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Principal": {"AWS": "*"},
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_every_bucket_blocks_public_access_and_is_encrypted(synthesized: Synth) -> None:
    buckets = synthesized.resources("AWS::S3::Bucket")
    assert len(buckets) >= 1
    for lid, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, lid
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], lid


def test_data_bucket_sends_access_logs_to_the_log_bucket(synthesized: Synth) -> None:
    _, bucket = _data_bucket(synthesized)
    logs_lid = synthesized.stack.get_logical_id(
        synthesized.stack.storage.access_logs_bucket.node.default_child
    )
    assert bucket["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {
        "Ref": logs_lid
    }


def test_default_removal_destroys_and_empties_the_bucket(synthesized: Synth) -> None:
    lid, bucket = _data_bucket(synthesized)
    assert bucket["DeletionPolicy"] == "Delete"
    auto_delete = synthesized.resources("Custom::S3AutoDeleteObjects")
    assert any(r["Properties"]["BucketName"] == {"Ref": lid} for r in auto_delete.values())


def test_retain_policy_keeps_the_bucket_and_its_objects(synthesized_kms: Synth) -> None:
    _, bucket = _data_bucket(synthesized_kms)
    assert bucket["DeletionPolicy"] == "Retain"
    assert synthesized_kms.resources("Custom::S3AutoDeleteObjects") == {}


def test_kms_option_encrypts_the_bucket_with_the_stack_key(synthesized_kms: Synth) -> None:
    _, bucket = _data_bucket(synthesized_kms)
    key_lid = synthesized_kms.stack.get_logical_id(synthesized_kms.stack.key.node.default_child)
    rule = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": [key_lid, "Arn"]},
    }
    synthesized_kms.template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_topic_is_encrypted_and_ssl_only(synthesized: Synth) -> None:
    synthesized.template.has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()}
    )
    synthesized.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_email_subscription_only_when_configured(
    synthesized: Synth, synthesized_kms: Synth
) -> None:
    assert synthesized.resources("AWS::SNS::Subscription") == {}
    synthesized_kms.template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )
