"""moto 5.2.5's server, made faster where it repeats work for every request.

A change of speed, not of answers: for every request, moto's
``DomainDispatcherApplication.get_backend_for_host`` lists moto's package
folder (``moto.backends.list_of_moto_modules``: about 250 ``stat`` calls) and
then tries the URL patterns of every service in turn, about 1.4 ms a request.
The answer depends on the host alone, and moto's folder and patterns do not
change while the process runs, so :func:`install` keeps each host's answer.
"""

from __future__ import annotations

import functools
from typing import Any

_INSTALLED = False


def install() -> None:
    """Keep each host's backend (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    lookup = DomainDispatcherApplication.get_backend_for_host

    @functools.lru_cache(maxsize=256)
    def backend_for(app: DomainDispatcherApplication, host: str | None) -> Any:
        return lookup(app, host)

    def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
        return backend_for(self, host)

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]
    _INSTALLED = True
