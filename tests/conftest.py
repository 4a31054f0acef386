"""Shared test setup: no X-Ray, fake AWS credentials, one region."""

from __future__ import annotations

import os

# Before any handler module (and its module-level Tracer) is imported.
os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "mnist-ll-pipeline-tests")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SECURITY_TOKEN", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
