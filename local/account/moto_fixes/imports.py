"""moto 5.2.5 imports, deferred where a service the pipeline never calls costs seconds.

moto's ASL interpreter (``moto.stepfunctions.parser``) imports
``moto.batch.utils`` for its Batch task states, and so the ``moto.batch``
package, whose ``__init__`` loads the Batch backend and with it the EC2, ECS,
IAM and Logs models. The EC2 models read botocore's endpoint data three times
at import. That was about 2 s of CPU in every process that runs a state
machine (the local run, ``services``, every test worker), and more on a fresh
clone that compiles them first.

:func:`install` registers ``moto.batch`` as its real package without running
its ``__init__``: ``moto.batch.utils`` imports as before, and the first read
of anything else (a Batch request reads ``batch_backends``) runs the
``__init__`` then. Nothing answers differently; only the import is later.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

_DEFERRED = "moto.batch"


def install() -> None:
    """Defer ``moto.batch``'s ``__init__`` (idempotent; a no-op once it ran)."""
    if _DEFERRED in sys.modules:
        return
    spec = importlib.util.find_spec(_DEFERRED)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader
    ran = False

    def __getattr__(name: str) -> Any:
        nonlocal ran
        if ran or name.startswith("__"):
            raise AttributeError(f"module {_DEFERRED!r} has no attribute {name!r}")
        ran = True
        loader.exec_module(package)  # moto.batch's own __init__, in the same module
        return getattr(package, name)

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[_DEFERRED] = package
    import moto

    moto.batch = package
