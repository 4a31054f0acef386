"""moto 5.2.5's logs service, corrected where AWS answers differently.

- **FilterLogEvents** (moto ``LogsResponse.filter_log_events``): moto ignores
  ``logStreamNamePrefix`` and searches every stream of the group. AWS filters
  to the streams whose names start with it, and answers
  ``InvalidParameterException`` when ``logStreamNames`` is given too
  (botocore: "If you specify a value for both logStreamNamePrefix and
  logStreamNames, the action returns an InvalidParameterException error.").
"""

from __future__ import annotations

import json
from typing import Any

_INSTALLED = False


def _install_filter_log_events() -> None:
    from moto.logs.exceptions import InvalidParameterException, ResourceNotFoundException
    from moto.logs.responses import LogsResponse

    original = LogsResponse.filter_log_events

    def filter_log_events(self: LogsResponse) -> Any:
        prefix = self._get_param("logStreamNamePrefix")
        if prefix is None:
            return original(self)
        if self._get_param("logStreamNames"):
            raise InvalidParameterException(
                "logStreamNamePrefix and logStreamNames cannot both be specified."
            )
        group_name = self._get_param("logGroupName")
        group = self.logs_backend.groups.get(group_name)
        if group is None:
            raise ResourceNotFoundException()
        names = [name for name in group.streams if name.startswith(prefix)]
        if not names:  # moto reads an empty list as "every stream"
            return json.dumps({"events": [], "searchedLogStreams": []})
        events, next_token, searched = self.logs_backend.filter_log_events(
            group_name,
            names,
            self._get_param("startTime"),
            self._get_param("endTime"),
            self._get_param("limit"),
            self._get_param("nextToken"),
            self._get_param("filterPattern"),
            self._get_param("interleaved", False),
        )
        return json.dumps(
            {"events": events, "nextToken": next_token, "searchedLogStreams": searched}
        )

    LogsResponse.filter_log_events = filter_log_events  # type: ignore[method-assign]


def install() -> None:
    """Apply this module's fixes (idempotent)."""
    global _INSTALLED
    if _INSTALLED:
        return
    _install_filter_log_events()
    _INSTALLED = True
