"""botocore reads its JSON models (a service's model, the endpoint rules and
partitions) once per session, and the local account's process makes many
sessions: moto makes one for each new account backend's list of regions and
for each task client of its ASL interpreter, and a boto3 client built without
a session uses the default one. The SageMaker model alone is about 0.2 s of
parsing.

A change of speed, not of answers: :func:`install` makes sessions with the same
data path share one loader, so the process reads each file once. The files
are the same either way, and a loader only reads them.
"""

from __future__ import annotations

import functools

_INSTALLED = False


def install() -> None:
    """Share one loader per data path (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    import botocore.loaders
    import botocore.session

    botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)
    _INSTALLED = True
