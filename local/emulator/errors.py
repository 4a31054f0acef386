"""The local SageMaker's error: SageMaker's wire format (``__type`` + ``message``).

A leaf: it imports nothing of :mod:`local.emulator`, so every module there can
raise it.
"""

from __future__ import annotations


class ServiceError(Exception):
    """An error in SageMaker's wire format (``__type`` + ``message``)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
