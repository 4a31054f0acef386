"""Shared test setup: no X-Ray, fake AWS credentials, one region; the long
test files first."""

from __future__ import annotations

import functools
import os

import botocore.loaders
import botocore.session
import pytest

# Before any handler module (and its module-level Tracer) is imported.
os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "mnist-ll-pipeline-tests")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SECURITY_TOKEN", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

# moto's mock_aws gives every test a new boto3 default session, and every new
# botocore session reads botocore's JSON models (service, endpoint rules,
# partitions) from disk again: about 0.1 s for each first client of a service.
# Sessions with the same data path share one loader here, so a process reads
# each model once. The models are the same files either way (the local
# account's processes do the same: local/account/moto_fixes/loaders.py).
botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)  # type: ignore[attr-defined]
# (Every pytest worker also imports every test module to collect the suite, so
# test modules import scikit-learn, about 1.5 s, inside the tests that use it.)


#: Test files and folders that run longest (the CDK CLI, the SDK flows, whole
#: pipelines), first, longest first: pytest-xdist hands out files in
#: collection order, so the long ones start early and the short ones fill the
#: end of the run.
_LONG_FIRST = (
    "tests/stack/test_cli_synth.py",
    "tests/sdk/",
    "tests/e2e/test_readme_examples.py",
    "tests/e2e/test_cli.py",
    "tests/e2e/",
    "tests/stack/",
    "tests/bench/",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid
        for index, prefix in enumerate(_LONG_FIRST):
            if path.startswith(prefix):
                return index
        return len(_LONG_FIRST)

    items.sort(key=rank)  # stable: files and tests keep their order within a rank
