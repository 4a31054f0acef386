"""The execution role the env file names (``MNIST_LL_ROLE_ARN``), as it exists
in the local account's IAM.

The SageMaker Python SDK v3 validates every role it is given before a job
starts: ``iam:SimulatePrincipalPolicy`` on the actions training and hosting
need (ECR pulls, CloudWatch metrics, the VPC network-interface actions), then
``iam:GetRole`` for a trust policy that lets ``sagemaker.amazonaws.com``
assume it. This role passes both, so the SDK runs without
``SAGEMAKER_VALIDATE_ROLE=false``. The local SageMaker itself accepts any
well-formed role ARN.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

ROLE_NAME = "SageMakerExecutionRole"
POLICY_NAME = "SageMakerTrainingAndHosting"

TRUST_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}

#: What a SageMaker training job and endpoint do with their role. Resources are
#: ``*``: the account is local, and the SDK simulates without ResourceArns.
PERMISSIONS_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "PullAlgorithmImages",
            "Effect": "Allow",
            "Action": [
                "ecr:GetAuthorizationToken",
                "ecr:BatchCheckLayerAvailability",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchGetImage",
            ],
            "Resource": "*",
        },
        {
            "Sid": "DataAndModelArtifacts",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:ListBucket",
                "s3:GetBucketLocation",
            ],
            "Resource": "*",
        },
        {
            "Sid": "LogsAndMetrics",
            "Effect": "Allow",
            "Action": [
                "cloudwatch:PutMetricData",
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:DescribeLogStreams",
            ],
            "Resource": "*",
        },
        {
            "Sid": "VpcNetworkInterfaces",
            "Effect": "Allow",
            "Action": [
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeVpcs",
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
            ],
            "Resource": "*",
        },
    ],
}


def ensure_example_role(iam: Any) -> str:
    """Create the role (or find it: moto keeps its state per process) and set
    its policy; its ARN."""
    try:
        arn = iam.create_role(
            RoleName=ROLE_NAME,
            AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
            Description="SageMaker execution role of the local account",
        )["Role"]["Arn"]
    except ClientError as e:
        if e.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        iam.update_assume_role_policy(RoleName=ROLE_NAME, PolicyDocument=json.dumps(TRUST_POLICY))
        arn = iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=ROLE_NAME, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(PERMISSIONS_POLICY)
    )
    return str(arn)
