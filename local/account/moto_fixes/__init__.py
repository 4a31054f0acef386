"""Where moto answers differently from AWS, the local account extends or wraps
it here, one module per AWS service. Each module has an ``install()`` that is
safe to call more than once; :func:`install` calls them all before the moto
server takes its first request. Each fix names the moto version it was written
against and the upstream behaviour it corrects, so it can be offered upstream
and dropped when moto catches up.

Imports run one way: these modules may import moto, botocore and
:mod:`pipeline_core`, nothing of :mod:`local` (:mod:`local.account.services`
installs them).
"""

from __future__ import annotations

from local.account.moto_fixes import (
    cloudwatch,
    iam,
    imports,
    loaders,
    logs,
    scheduler,
    server,
    stepfunctions,
)

_INSTALLED = False


def install() -> None:
    """Apply every fix (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    # imports first: it defers an import the other fixes' imports would run.
    for module in (imports, loaders, cloudwatch, iam, logs, scheduler, server, stepfunctions):
        module.install()
    _INSTALLED = True
