"""The SNS topic that carries success and failure notices."""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct


class NotificationTopic(Construct):
    """Encrypted, SSL-only topic with an optional email subscription."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        master_key: kms.IKey,
        email: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="MNIST Linear Learner pipeline",
            master_key=master_key,
            enforce_ssl=True,
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
