"""What a local endpoint tells CloudWatch: its invocation metrics and its logs.

:class:`RuntimeMetrics` wraps the runtime's ASGI app (InvokeEndpoint) and
records, per ``EndpointName`` and ``VariantName``, what SageMaker publishes
(the "Amazon SageMaker AI metrics in Amazon CloudWatch" page):

- namespace ``AWS/SageMaker``: ``Invocations``, ``InvocationsPerInstance``
  (``1/instances`` each), ``Invocation4XXErrors`` and ``Invocation5XXErrors``
  (1 for a model's 4xx/5xx, 0 otherwise; unit None), ``ModelLatency`` and
  ``OverheadLatency`` (Microseconds); an asynchronous endpoint publishes no
  ``Invocations``, ``InvocationsPerInstance`` or ``OverheadLatency``;
- namespace ``/aws/sagemaker/Endpoints``: ``CPUUtilization`` and
  ``MemoryUtilization`` (Percent) of the serving process, once a minute.

Values are aggregated per second into statistic sets (as CloudWatch stores
them) and sent by one background thread every :attr:`flush_seconds`, so an
invocation only adds to a dict. The container's lines (the model loaded, a
model error) go to CloudWatch Logs group ``/aws/sagemaker/Endpoints/<name>``,
stream ``AllTraffic/<instance-id>`` (the variant's name, then the instance).

During a blue/green update the new fleet's model is loaded beside the old
one (:meth:`stage`) and takes its share of the traffic while the update bakes,
so a new model that fails is seen by the rollback alarms. A fault makes a
model's container answer 500 (``inject_fault("container_error:<ModelName>")``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("local.emulator.runtime_metrics")

NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"
#: The new fleet's model, beside the serving one, while an update bakes.
STAGED_SUFFIX = "@new-fleet"
#: ``inject_fault`` key of a model whose container answers 500.
CONTAINER_ERROR = "container_error:"
_PUT_LIMIT = 1000  # PutMetricData takes at most 1000 values a call
_UTILIZATION_SECONDS = 60.0

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def instance_id(endpoint: str, config: str, index: int) -> str:
    """A stable EC2-style instance id for one instance of a variant."""
    digest = hashlib.sha256(f"{endpoint}/{config}/{index}".encode()).hexdigest()
    return f"i-{digest[:17]}"


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class _Route:
    """Which variant, model and fleet one request goes to."""

    def __init__(self, variant: str, model: str, instances: int, staged: bool, config: str):
        self.variant = variant
        self.model = model
        self.instances = max(1, instances)
        self.staged = staged
        self.config = config


class RuntimeMetrics:
    """Endpoint invocation metrics and logs of one local SageMaker ``service``
    (its ``cloudwatch`` and ``logs`` clients are read at each flush)."""

    def __init__(self, service: Any, *, flush_seconds: float = 1.0) -> None:
        self.service = service
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()
        #: (namespace, metric, endpoint, variant, unit, second) -> [n, sum, min, max]
        self._stats: dict[tuple[str, str, str, str, str, int], list[float]] = {}
        self._lines: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._counters: dict[str, int] = {}
        self._announced: set[tuple[str, str]] = set()
        self._streams: set[tuple[str, str]] = set()
        self._utilization_at: dict[str, float] = {}
        self._cpu_mark = (time.monotonic(), time.process_time())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the ASGI wrapper ------------------------------------------------------------

    def wrap(self, app: App) -> App:
        """``app`` (the runtime) with every ``/endpoints/<name>/invocations``
        routed to its fleet and measured."""
        self._ensure_thread()  # the startup lines are written before any invocation

        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            path = str(scope.get("path", ""))
            parts = path.strip("/").split("/")
            if (
                scope["type"] == "http"
                and len(parts) == 3
                and parts[::2] == ["endpoints", "invocations"]
            ):
                await self._invoke(app, parts[1], scope, receive, send)
            else:
                await app(scope, receive, send)

        return wrapped

    async def _invoke(
        self, app: App, name: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        entered = time.perf_counter()
        route = self._route(name)
        if route is None:  # no such endpoint: the runtime answers, nothing to measure
            await app(scope, receive, send)
            return
        if self._faulted(route.model):
            await self._drain(receive)
            model_started = time.perf_counter()
            await self._container_error(name, send)
            done = time.perf_counter()
            self.record(name, route, 500, done - model_started, model_started - entered)
            return
        if route.staged:
            scope = dict(scope)
            scope["path"] = f"/endpoints/{name}{STAGED_SUFFIX}/invocations"
            scope["raw_path"] = scope["path"].encode()
        status: list[int] = []
        error_body: list[bytes] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            elif message["type"] == "http.response.body" and status and status[0] >= 400:
                error_body.append(bytes(message.get("body", b""))[:4096])
            await send(message)

        model_started = time.perf_counter()
        await app(scope, receive, watch)
        model_seconds = time.perf_counter() - model_started
        code = status[0] if status else 500
        if code == 424:  # a model error, relayed: count by the container's own status
            try:
                code = int(json.loads(b"".join(error_body))["OriginalStatusCode"])
            except (ValueError, KeyError, TypeError):
                code = 500
        elif code in (400, 404, 413):
            return  # refused by the runtime before any model saw it
        self.record(name, route, code, model_seconds, model_started - entered)

    def record(
        self,
        endpoint: str,
        route: _Route,
        status: int,
        model_seconds: float,
        overhead_seconds: float,
        asynchronous: bool = False,
    ) -> None:
        """One invocation's metrics (``status`` is the container's)."""
        now = time.time()
        values: list[tuple[str, float, str]] = [
            ("Invocation4XXErrors", 1.0 if 400 <= status < 500 else 0.0, "None"),
            ("Invocation5XXErrors", 1.0 if status >= 500 else 0.0, "None"),
            ("ModelLatency", max(0.0, model_seconds) * 1e6, "Microseconds"),
        ]
        if not asynchronous:
            values += [
                ("Invocations", 1.0, "None"),
                ("InvocationsPerInstance", 1.0 / route.instances, "None"),
                ("OverheadLatency", max(0.0, overhead_seconds) * 1e6, "Microseconds"),
            ]
        second = int(now)
        with self._lock:
            for metric, value, unit in values:
                key = (NAMESPACE, metric, endpoint, route.variant, unit, second)
                cell = self._stats.get(key)
                if cell is None:
                    self._stats[key] = [1.0, value, value, value]
                else:
                    cell[0] += 1
                    cell[1] += value
                    cell[2] = min(cell[2], value)
                    cell[3] = max(cell[3], value)
            if status >= 400:
                self._log(
                    endpoint,
                    route,
                    f"Model error: the container answered {status} to an invocation of "
                    f"variant {route.variant} (model {route.model})",
                )

    async def _drain(self, receive: Receive) -> None:
        more = True
        while more:
            message = await receive()
            more = bool(message.get("more_body", False))

    async def _container_error(self, name: str, send: Send) -> None:
        """A container's 500, as the runtime relays it (424 ModelError)."""
        service = self.service
        group = f"{LOG_GROUP_PREFIX}{name}"
        stream_arn = f"arn:aws:logs:{service.region}:{service.account}:log-group:{group}"
        message = (
            'Received server error (500) from primary with message "Internal Server Error". '
            f"See https://{service.region}.console.aws.amazon.com/cloudwatch/home?"
            f"region={service.region}#logEventViewer:group={group} in account "
            f"{service.account} for more information."
        )
        body = json.dumps(
            {
                "ErrorCode": "SERVER_ERROR_FROM_MODEL",
                "LogStreamArn": stream_arn,
                "Message": message,
                "message": message,
                "OriginalMessage": "Internal Server Error",
                "OriginalStatusCode": 500,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 424,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-amzn-errortype", b"ModelError"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    # -- routing ------------------------------------------------------------------------

    def _route(self, name: str) -> _Route | None:
        service = self.service
        with service._lock:
            endpoint = service._endpoints.get(name)
            if endpoint is None or endpoint.status not in ("InService", "Updating"):
                return None
            config_name = endpoint.config_name
            percent = endpoint.traffic_percent
            if endpoint.pending_config and percent and self._is_staged(name):
                count = self._counters.get(name, 0)
                self._counters[name] = count + 1
                # Every request's share, spread evenly (no randomness in tests).
                if (count + 1) * percent // 100 > count * percent // 100:
                    config_name = endpoint.pending_config
            config = service._configs.get(config_name) or {}
            variants = (config.get("request") or {}).get("ProductionVariants") or [{}]
            variant = variants[0]
            return _Route(
                variant=str(variant.get("VariantName", "AllTraffic")),
                model=str(variant.get("ModelName", "")),
                instances=int(variant.get("InitialInstanceCount") or 1),
                staged=config_name != endpoint.config_name,
                config=config_name,
            )

    def _is_staged(self, name: str) -> bool:
        return f"{name}{STAGED_SUFFIX}" in self.service.backend.registry.names()

    def _faulted(self, model: str) -> bool:
        with self.service._lock:
            return f"{CONTAINER_ERROR}{model}" in self.service._faults

    def stage(self, endpoint: str, artifact: Path) -> None:
        """Load the new fleet's model beside the serving one (while the update bakes)."""
        try:
            self.service.backend.load_endpoint_model(f"{endpoint}{STAGED_SUFFIX}", artifact)
        except Exception as e:  # the new fleet fails its health check: no traffic to it
            log.info("the new fleet of %s did not load: %s", endpoint, e)

    def unstage(self, endpoint: str) -> None:
        self.service.backend.unload_endpoint_model(f"{endpoint}{STAGED_SUFFIX}")
        with self.service._lock:
            self._counters.pop(endpoint, None)

    def route_async(self, name: str) -> _Route | None:
        """The route of an asynchronous invocation (for :meth:`record`)."""
        return self._route(name)

    # -- logs -----------------------------------------------------------------------------

    def _log(self, endpoint: str, route: _Route, line: str) -> None:
        """Queue a container line (the caller holds ``self._lock``)."""
        stream = f"{route.variant}/{instance_id(endpoint, route.config, 0)}"
        self._lines.setdefault((endpoint, stream), []).append(
            {"timestamp": int(time.time() * 1000), "message": line}
        )

    def _announce(self) -> None:
        """The startup lines of every config that began serving since the last flush."""
        service = self.service
        with service._lock:
            serving = [
                (e.name, e.config_name)
                for e in service._endpoints.values()
                if e.status in ("InService", "Updating")
            ]
        for name, config_name in serving:
            if (name, config_name) in self._announced:
                continue
            self._announced.add((name, config_name))
            with service._lock:
                config = (service._configs.get(config_name) or {}).get("request") or {}
                variant = (config.get("ProductionVariants") or [{}])[0]
                model = service._models.get(variant.get("ModelName", ""), {}).get("request", {})
            url = (model.get("PrimaryContainer") or {}).get("ModelDataUrl", "")
            route = _Route(
                str(variant.get("VariantName", "AllTraffic")),
                str(variant.get("ModelName", "")),
                int(variant.get("InitialInstanceCount") or 1),
                False,
                config_name,
            )
            with self._lock:
                self._log(name, route, f"Loading model {route.model} from {url}")
                self._log(
                    name,
                    route,
                    f"Model {route.model} loaded; serving /invocations for variant "
                    f"{route.variant} of endpoint config {config_name}",
                )

    def _write_logs(self, lines: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
        logs = self.service.logs
        if logs is None:
            return
        for (endpoint, stream), events in lines.items():
            group = f"{LOG_GROUP_PREFIX}{endpoint}"
            if (group, stream) not in self._streams:
                for call, kwargs in (
                    (logs.create_log_group, {"logGroupName": group}),
                    (logs.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
                ):
                    try:
                        call(**kwargs)
                    except Exception as e:  # it exists already
                        log.debug("CloudWatch Logs: %s", e)
                self._streams.add((group, stream))
            try:
                logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
            except Exception as e:
                log.warning("could not write the logs of endpoint %s: %s", endpoint, e)

    # -- publishing -------------------------------------------------------------------------

    def _utilization(self, now: float) -> list[tuple[str, dict[str, Any]]]:
        """CPU and memory of the serving process, per endpoint, once a minute."""
        service = self.service
        with service._lock:
            endpoints = [
                (e.name, e.config_name)
                for e in service._endpoints.values()
                if e.status in ("InService", "Updating")
            ]
        due = [
            (name, config)
            for name, config in endpoints
            if now - self._utilization_at.get(name, 0.0) >= _UTILIZATION_SECONDS
        ]
        if not due:
            return []
        wall, cpu = time.monotonic(), time.process_time()
        start_wall, start_cpu = self._cpu_mark
        self._cpu_mark = (wall, cpu)
        cpu_percent = 100.0 * (cpu - start_cpu) / max(wall - start_wall, 1e-6)
        out = []
        for name, config_name in due:
            self._utilization_at[name] = now
            with service._lock:
                config = (service._configs.get(config_name) or {}).get("request") or {}
            variant = str(
                ((config.get("ProductionVariants") or [{}])[0]).get("VariantName", "AllTraffic")
            )
            dims = [
                {"Name": "EndpointName", "Value": name},
                {"Name": "VariantName", "Value": variant},
            ]
            for metric, value in (
                ("CPUUtilization", cpu_percent),
                ("MemoryUtilization", _memory_percent()),
            ):
                out.append(
                    (
                        INSTANCE_NAMESPACE,
                        {
                            "MetricName": metric,
                            "Dimensions": dims,
                            "Timestamp": _utc(now),
                            "Value": value,
                            "Unit": "Percent",
                        },
                    )
                )
        return out

    def flush(self) -> None:
        """Send what was recorded (the thread calls it every :attr:`flush_seconds`)."""
        self._announce()
        with self._lock:
            stats, self._stats = self._stats, {}
            lines, self._lines = self._lines, {}
        data: dict[str, list[dict[str, Any]]] = {}
        for (namespace, metric, endpoint, variant, unit, second), cell in stats.items():
            data.setdefault(namespace, []).append(
                {
                    "MetricName": metric,
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": endpoint},
                        {"Name": "VariantName", "Value": variant},
                    ],
                    "Timestamp": _utc(second),
                    "StatisticValues": {
                        "SampleCount": cell[0],
                        "Sum": cell[1],
                        "Minimum": cell[2],
                        "Maximum": cell[3],
                    },
                    "Unit": unit,
                }
            )
        for namespace, datum in self._utilization(time.time()):
            data.setdefault(namespace, []).append(datum)
        cloudwatch = self.service.cloudwatch
        if cloudwatch is not None:
            for namespace, items in data.items():
                for i in range(0, len(items), _PUT_LIMIT):
                    try:
                        cloudwatch.put_metric_data(
                            Namespace=namespace, MetricData=items[i : i + _PUT_LIMIT]
                        )
                    except Exception as e:
                        log.warning("could not publish endpoint metrics: %s", e)
        self._write_logs(lines)

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="runtime-metrics", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception as e:  # the endpoint keeps serving
                log.warning("endpoint metrics flush failed: %s", e)

    def close(self) -> None:
        """Stop the thread and send what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self.flush()
        except Exception as e:
            log.warning("endpoint metrics flush failed: %s", e)


def _memory_percent() -> float:
    """This process's resident memory as a share of the machine's (Linux)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        total_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
        return 100.0 * pages * os.sysconf("SC_PAGE_SIZE") / (total_kb * 1024)
    except (OSError, ValueError, StopIteration, IndexError):
        return 0.0
