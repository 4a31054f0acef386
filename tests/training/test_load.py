"""A bounded load test of the endpoint: 8 concurrent clients, ~4,000 requests.

Good requests (single and multi-row CSV and JSON, small and fast-path-sized
bodies) are mixed with bad ones (wrong feature count, garbage bytes, bad JSON,
an unsupported content type, bodies over 6 MB). Every good answer is checked
value by value against the model run in this process, every bad one must get
its 4xx, and the server must still be healthy afterwards. Loopback only; the
counts and the time are bounded.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

import httpx
import numpy as np
import pytest

from training.model import LinearModel
from training.serving import BackgroundServer, ModelRegistry, create_app

DIM = 50
CLIENTS = 8
REQUESTS_PER_CLIENT = 200
OVERSIZE_PER_CLIENT = 1  # 6 MB each: kept few
DEADLINE_S = 180.0  # a hang guard, not a speed target (speed lives in `make bench`)

MODEL = LinearModel(
    weights=np.random.default_rng(1).normal(size=DIM).astype(np.float32),
    bias=-0.25,
    mean=np.random.default_rng(2).normal(scale=0.1, size=DIM).astype(np.float32),
    std=np.random.default_rng(3).uniform(0.2, 1.0, size=DIM).astype(np.float32),
    threshold=0.5,
)


@dataclass
class Plan:
    body: bytes
    content_type: str
    accept: str | None
    rows: np.ndarray | None  # the features of a good request
    status: int  # what the server must answer
    path: str = "/invocations"


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    x[rng.random(x.shape) < 0.6] = 0  # many lone zeros, as in MNIST rows
    return x


def _csv(x: np.ndarray, fmt: str) -> bytes:
    if fmt == "repr":
        lines = (",".join(repr(v) for v in row) for row in x.astype(np.float64).tolist())
    else:
        lines = (",".join(f"{v:.9g}" for v in row) for row in x.tolist())
    return "\n".join(lines).encode()


def _plan(seed: int) -> list[Plan]:
    rng = np.random.default_rng(seed)
    plans: list[Plan] = []
    for i in range(REQUESTS_PER_CLIENT):
        kind = rng.random()
        accept = "application/jsonlines" if rng.random() < 0.2 else None
        path = "/invocations" if rng.random() < 0.5 else "/endpoints/load/invocations"
        if kind < 0.35:
            x = _rows(rng, 1)
            plans.append(Plan(_csv(x, "repr"), "text/csv", accept, x, 200, path))
        elif kind < 0.55:
            x = _rows(rng, int(rng.integers(2, 40)))
            plans.append(Plan(_csv(x, "%.9g"), "text/csv; charset=utf-8", accept, x, 200, path))
        elif kind < 0.60:  # >= 32 KB: the vectorised fast path
            x = _rows(rng, int(rng.integers(150, 400)))
            body = _csv(x, "%.9g").replace(b"\n", b"\r\n") + b"\r\n"
            plans.append(Plan(body, "text/csv", accept, x, 200, path))
        elif kind < 0.75:
            x = _rows(rng, int(rng.integers(1, 10)))
            if rng.random() < 0.5:
                doc = {"instances": [{"features": r} for r in x.astype(np.float64).tolist()]}
            else:
                doc = {
                    "instances": [
                        {"data": {"features": {"values": r}}} for r in x.astype(np.float64).tolist()
                    ]
                }
            plans.append(Plan(json.dumps(doc).encode(), "application/json", accept, x, 200, path))
        elif kind < 0.80:  # wrong feature count
            x = _rows(rng, int(rng.integers(1, 5)))[:, : DIM - 1 - int(rng.integers(0, 5))]
            plans.append(Plan(_csv(x, "%.9g"), "text/csv", None, None, 400, path))
        elif kind < 0.85:  # garbage bytes
            body = rng.integers(0, 256, size=int(rng.integers(1, 4000)), dtype=np.uint8).tobytes()
            plans.append(Plan(body, "text/csv", None, None, 400, path))
        elif kind < 0.90:  # bad JSON
            body = b'{"instances": [{"features": [1, 2' + bytes([int(rng.integers(0, 256))])
            plans.append(Plan(body, "application/json", None, None, 400, path))
        elif kind < 0.95:  # unsupported content type
            x = _rows(rng, 1)
            plans.append(Plan(_csv(x, "%.9g"), "text/plain", None, None, 415, path))
        else:  # a big, but legal, batch with one non-numeric value
            x = _rows(rng, 200)
            body = _csv(x, "%.9g").replace(b",", b",x", 1)
            plans.append(Plan(body, "text/csv", None, None, 400, path))
        if i < OVERSIZE_PER_CLIENT:
            body = b"0," * (3 * 1024 * 1024 + 1)
            plans.append(Plan(body, "text/csv", None, None, 413, path))
    order = rng.permutation(len(plans))
    return [plans[j] for j in order]


def _check(plan: Plan, response: httpx.Response) -> str | None:
    """``None`` when the answer is right, else what is wrong with it."""
    relayed = plan.path.startswith("/endpoints/") and plan.status not in (200, 413)
    # Through the runtime API a container error comes back as a 424 ModelError.
    expected = 424 if relayed else plan.status
    if response.status_code != expected:
        return f"status {response.status_code} != {expected}: {response.text[:200]}"
    if plan.rows is None:
        body = response.json()
        if relayed and body.get("OriginalStatusCode") != plan.status:
            return f"OriginalStatusCode {body.get('OriginalStatusCode')} != {plan.status}"
        message = body.get("message")
        return None if isinstance(message, str) and message else "4xx without a message"
    if plan.accept == "application/jsonlines":
        predictions = [json.loads(line) for line in response.text.strip().split("\n")]
    else:
        predictions = response.json()["predictions"]
    scores, labels = MODEL.predict(plan.rows)
    if len(predictions) != len(labels):
        return f"{len(predictions)} predictions for {len(labels)} rows"
    got_labels = [p["predicted_label"] for p in predictions]
    if got_labels != labels.tolist():
        return "wrong predicted_label"
    got_scores = np.array([p["score"] for p in predictions], dtype=np.float64)
    if not np.array_equal(got_scores.astype(np.float32), scores):
        return f"wrong scores: max diff {np.max(np.abs(got_scores - scores)):.3g}"
    return None


def test_eight_clients_mixed_good_and_bad_requests():
    plans = [_plan(100 + c) for c in range(CLIENTS)]
    good = sum(p.rows is not None for client in plans for p in client)
    total = sum(len(client) for client in plans)
    assert total >= 1600 and good >= 800
    # independent of LinearModel.predict: the README formula, in float64
    x = plans[0][0].rows if plans[0][0].rows is not None else np.zeros((1, DIM), np.float32)
    z = ((x.astype(np.float64) - MODEL.mean) / MODEL.std) @ MODEL.weights + MODEL.bias
    assert np.allclose(1 / (1 + np.exp(-z)), MODEL.predict(x)[0], atol=1e-5)

    registry = ModelRegistry(default=MODEL)
    registry.register("load", MODEL)
    failures: list[str] = []
    answered = [0] * CLIENTS
    lock = threading.Lock()
    deadline = time.monotonic() + DEADLINE_S
    with BackgroundServer(create_app(registry)) as server:
        start_line = threading.Barrier(CLIENTS)

        def client(index: int) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                start_line.wait()
                for plan in plans[index]:
                    if time.monotonic() > deadline:
                        with lock:
                            failures.append(f"client {index}: deadline passed")
                        return
                    headers = {"Content-Type": plan.content_type}
                    if plan.accept:
                        headers["Accept"] = plan.accept
                    try:
                        response = http.post(plan.path, content=plan.body, headers=headers)
                        problem = _check(plan, response)
                    except (httpx.HTTPError, ValueError, KeyError) as e:
                        problem = f"{type(e).__name__}: {e}"
                    if problem is not None:
                        with lock:
                            failures.append(f"client {index} ({plan.content_type}): {problem}")
                    else:
                        answered[index] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE_S + 30)
        elapsed = time.perf_counter() - started
        assert not any(t.is_alive() for t in threads), "a client hung"
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.get("/ping").json()["status"] == "healthy"
            after = _rows(np.random.default_rng(7), 3)
            assert _check(Plan(_csv(after, "repr"), "text/csv", None, after, 200), http.post(
                "/invocations", content=_csv(after, "repr"), headers={"Content-Type": "text/csv"}
            )) is None  # fmt: skip
    assert not failures, f"{len(failures)} bad answers, first: {failures[:5]}"
    assert sum(answered) == total
    assert elapsed < DEADLINE_S


@pytest.mark.parametrize("size", [6 * 1024 * 1024 + 1, 8 * 1024 * 1024])
def test_oversize_bodies_get_413_and_the_server_keeps_serving(size):
    with BackgroundServer(create_app(ModelRegistry(default=MODEL))) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for _ in range(3):
                r = http.post(
                    "/invocations", content=b"1" * size, headers={"Content-Type": "text/csv"}
                )
                assert r.status_code == 413 and "larger than" in r.json()["message"]
            x = _rows(np.random.default_rng(8), 2)
            r = http.post(
                "/invocations", content=_csv(x, "repr"), headers={"Content-Type": "text/csv"}
            )
            assert _check(Plan(b"", "text/csv", None, x, 200), r) is None
