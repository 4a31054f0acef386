"""Measure: the local endpoint over HTTP against in-process numpy (the floor).

The server is ``python -m training serve`` in its own process, as ``make run``
starts it; the clients are threads here on plain ``http.client`` keep-alive
connections with prebuilt bodies, so the client costs as little as it can.
Every answer is checked (status and number of predictions); the floor is
``model.predict`` on the same batches, in this process.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.common import Measure, best_of
from pipeline_core.evaluate import format_csv
from training.model import LinearModel

ROOT = Path(__file__).resolve().parent.parent
BATCH_ROWS = 100
#: In-process predictions per floor timing (best of three).
FLOOR_CALLS = 2_000
GOAL_ROWS_PER_S = 50_000.0
GOAL_P50_MS = 2.0


def run(
    model: LinearModel | Path | str,
    test_x: npt.NDArray[np.float32],
    *,
    batched_requests: int = 2_000,
    single_requests: int = 2_000,
    clients: int = 4,
    batch_rows: int = BATCH_ROWS,
    startup_timeout: float = 30.0,
    floor_calls: int = FLOOR_CALLS,
) -> list[Measure]:
    """Batched rows/s and single-row latency over HTTP, each against the floor
    (``floor_calls`` in-process predictions per timing, best of three)."""
    x = np.ascontiguousarray(test_x, dtype=np.float32)
    if x.ndim != 2 or len(x) < 1:
        raise ValueError("test_x must be a non-empty (rows, features) matrix")
    with tempfile.TemporaryDirectory(prefix="bench-endpoint-") as tmp:
        if isinstance(model, LinearModel):
            path = model.save(Path(tmp) / "model.tar.gz")
            loaded = model
        else:
            path = Path(model)
            loaded = LinearModel.load(path)
        batches = _batches(x, batch_rows)
        singles = [format_csv(x[i : i + 1]) for i in range(min(len(x), 256))]
        with _Server(path, startup_timeout) as port:
            _warm_up(port, batches, singles)
            http_s = _batched(port, batches, batched_requests, clients)
            latencies = _single(port, singles, single_requests)
    batched_rows = batched_requests * batch_rows
    ours_rows_per_s = batched_rows / http_s
    floor_rows_per_s = _floor_rows_per_s(loaded, x, batch_rows, floor_calls)
    floor_single_s = _floor_single_s(loaded, x, floor_calls)
    p50 = float(np.percentile(latencies, 50))
    p99 = float(np.percentile(latencies, 99))
    return [
        Measure(
            name=f"endpoint, {batch_rows}-row text/csv batches over HTTP ({clients} clients)",
            metric="rows/s",
            baseline_name="in-process model.predict (numpy floor)",
            baseline=floor_rows_per_s,
            ours=ours_rows_per_s,
            unit="rows/s",
            goal="≥ 50k rows/s batched",
            met=ours_rows_per_s >= GOAL_ROWS_PER_S,
            details={
                "requests": batched_requests,
                "rows": batched_rows,
                "seconds": round(http_s, 3),
                "body_bytes": len(batches[0]),
                "ours_over_floor": round(ours_rows_per_s / floor_rows_per_s, 4),
            },
            higher_is_better=True,
            note=f"{batched_requests} requests of {batch_rows} rows",
        ),
        Measure(
            name="endpoint, single-row text/csv latency over HTTP (1 client)",
            metric="p50 seconds",
            baseline_name="in-process model.predict on one row (numpy floor)",
            baseline=floor_single_s,
            ours=p50,
            unit="s",
            goal="single-row p50 ≤ 2 ms",
            met=p50 * 1000 <= GOAL_P50_MS,
            details={
                "requests": single_requests,
                "p50_ms": round(p50 * 1000, 3),
                "p99_ms": round(p99 * 1000, 3),
                "floor_ms": round(floor_single_s * 1000, 4),
                "ours_over_floor": round(p50 / floor_single_s, 1),
            },
            note=f"p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms",
        ),
    ]


def _batches(x: npt.NDArray[np.float32], rows: int) -> list[bytes]:
    """Up to 16 distinct bodies of ``rows`` rows, reused round-robin."""
    starts = range(0, max(len(x) - rows, 0) + 1, rows)
    return [format_csv(x[s : s + rows]) for s in list(starts)[:16]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    """``python -m training serve`` in a child process, stopped on exit."""

    def __init__(self, model_path: Path, timeout: float) -> None:
        self.model_path = model_path
        self.timeout = timeout
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> int:
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        env["OPENBLAS_NUM_THREADS"] = "1"
        cmd = [sys.executable, "-m", "training", "serve", "--model", str(self.model_path)]
        self.proc = subprocess.Popen(
            [*cmd, "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"the endpoint exited with {self.proc.returncode}: {err}")
            try:
                if _request(_connect(self.port), "GET", "/ping", b"", "")[0] == 200:
                    return self.port
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"the endpoint did not answer /ping within {self.timeout} s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()


def _connect(port: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _request(
    conn: http.client.HTTPConnection, method: str, path: str, body: bytes, content_type: str
) -> tuple[int, bytes]:
    headers = {"Content-Type": content_type} if content_type else {}
    conn.request(method, path, body=body or None, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def _check(status: int, content: bytes, rows: int) -> None:
    if status != 200 or content.count(b'"predicted_label"') != rows:
        raise RuntimeError(f"bad answer from the endpoint ({status}): {content[:200]!r}")


def _warm_up(port: int, batches: Sequence[bytes], singles: Sequence[bytes]) -> None:
    conn = _connect(port)
    try:
        for body in list(batches[:4]) + list(singles[:20]):
            status, content = _request(conn, "POST", "/invocations", body, "text/csv")
            _check(status, content, body.count(b"\n") + 1)
    finally:
        conn.close()


def _batched(port: int, batches: Sequence[bytes], requests: int, clients: int) -> float:
    """Wall seconds for ``requests`` batched requests spread over ``clients``."""
    rows = [b.count(b"\n") + 1 for b in batches]
    errors: list[BaseException] = []
    start_line = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        conn = _connect(port)
        try:
            start_line.wait()
            for i in range(index, requests, clients):
                k = i % len(batches)
                status, content = _request(conn, "POST", "/invocations", batches[k], "text/csv")
                _check(status, content, rows[k])
        except BaseException as e:  # surfaced below, after every thread ends
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    start_line.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed") from errors[0]
    return elapsed


def _single(port: int, singles: Sequence[bytes], requests: int) -> npt.NDArray[np.float64]:
    """Per-request seconds for ``requests`` sequential single-row requests."""
    out = np.empty(requests, dtype=np.float64)
    conn = _connect(port)
    try:
        for i in range(requests):
            body = singles[i % len(singles)]
            start = time.perf_counter()
            status, content = _request(conn, "POST", "/invocations", body, "text/csv")
            out[i] = time.perf_counter() - start
            _check(status, content, 1)
    finally:
        conn.close()
    return out


def _floor_rows_per_s(
    model: LinearModel, x: npt.NDArray[np.float32], rows: int, calls: int
) -> float:
    batches = [x[s : s + rows] for s in range(0, max(len(x) - rows, 0) + 1, rows)][:16]
    total = sum(len(b) for b in batches)
    reps = max(1, calls // len(batches))

    def predict_all() -> int:
        for _ in range(reps):
            for b in batches:
                model.predict(b)
        return reps

    seconds, _ = best_of(predict_all, repeat=3)
    return total * reps / seconds


def _floor_single_s(model: LinearModel, x: npt.NDArray[np.float32], calls: int) -> float:
    row = x[:1]
    reps = max(1, calls)

    def predict_one() -> int:
        for _ in range(reps):
            model.predict(row)
        return reps

    seconds, _ = best_of(predict_one, repeat=3)
    return seconds / reps
