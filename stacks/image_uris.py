"""The Linear Learner image URI for every region, from the SDK's own table."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from aws_cdk import Aws, CfnMapping, Fn
from constructs import Construct

DATA_FILE = Path(__file__).parent / "data" / "linear-learner-image-uris.json"
IMAGE_VERSION = "1"


@cache
def _table() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    return data


def registries() -> dict[str, str]:
    """Region → ECR account that hosts the Linear Learner image."""
    version: dict[str, Any] = _table()["versions"][IMAGE_VERSION]
    return dict(sorted(version["registries"].items()))


def repository() -> str:
    return str(_table()["versions"][IMAGE_VERSION]["repository"])


class LinearLearnerImage(Construct):
    """A region→account ``CfnMapping`` and the image URI for the stack's region.

    ``Aws.URL_SUFFIX`` gives ``amazonaws.com.cn`` in China and the right
    domain in the isolated partitions, as the SDK does.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.mapping = CfnMapping(
            self,
            "Registries",
            mapping={region: {"account": account} for region, account in registries().items()},
        )
        self.account = self.mapping.find_in_map(Aws.REGION, "account")
        self.repository_name = repository()
        self.image_uri = Fn.join(
            "",
            [
                self.account,
                ".dkr.ecr.",
                Aws.REGION,
                ".",
                Aws.URL_SUFFIX,
                f"/{self.repository_name}:{IMAGE_VERSION}",
            ],
        )
        self.repository_arn = Fn.join(
            "",
            [
                "arn:",
                Aws.PARTITION,
                ":ecr:",
                Aws.REGION,
                ":",
                self.account,
                f":repository/{self.repository_name}",
            ],
        )
