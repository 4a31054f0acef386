from __future__ import annotations

import dataclasses
import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import ANY
from moto import mock_aws
from pipeline_testlib import BUCKET, REGION, make_run, stubbed

from pipeline_core.config import DEFAULTS
from pipeline_core.errors import (
    EvaluationError,
    PipelineError,
    SourceNotFoundError,
    ThrottlingError,
)
from pipeline_core.evaluate import (
    MAX_PAYLOAD_BYTES,
    SERVERLESS_MAX_PAYLOAD_BYTES,
    confusion,
    endpoint_invoker,
    evaluate_arrays,
    evaluate_deployment,
    format_csv,
    metrics,
)
from pipeline_core.recordio import encode_dense


class FakeEndpoint:
    """Predicts 1 when the mean pixel is above a threshold; records every call."""

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self.calls: list[tuple[int, str]] = []

    def __call__(self, body: bytes, content_type: str) -> bytes:
        rows = np.array(
            [[np.float32(v) for v in line.split(b",")] for line in body.split(b"\n")],
            dtype=np.float32,
        )
        self.calls.append((len(rows), content_type))
        score = rows.mean(axis=1)
        preds = [{"score": float(s), "predicted_label": int(s > self.threshold)} for s in score]
        return json.dumps({"predictions": preds}).encode()


def _data(n: int = 1000, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((n, dim), dtype=np.float32)
    y = (rng.random(n) < 0.3).astype(np.float32)
    return x, y


def test_csv_round_trips_float32_exactly() -> None:
    rng = np.random.default_rng(1)
    special = np.array(
        [0, 1, 1e-7, 1 / 3, 0.1, 3.4028235e38, 1.17549435e-38, 1e-45, 123456.789], dtype=np.float32
    )
    for x in (
        rng.random((50, 40), dtype=np.float32),
        special.reshape(1, -1),
        (rng.integers(0, 256, (30, 784)) / 255).astype(np.float32),
    ):
        text = format_csv(x)
        back = np.array(
            [[np.float32(v) for v in line.split(b",")] for line in text.split(b"\n")],
            dtype=np.float32,
        )
        assert back.tobytes() == x.tobytes()


def test_csv_has_one_line_per_row_and_no_trailing_newline() -> None:
    text = format_csv(np.zeros((3, 4), np.float32))
    assert text == b"0,0,0,0\n0,0,0,0\n0,0,0,0"
    assert format_csv(np.array([0.5, 1.0], np.float32)) == b"0.5,1"


def test_csv_formats_the_mnist_test_set_fast() -> None:
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 256, (10_000, 784)) / 255).astype(np.float32)
    x[rng.random(x.shape) < 0.8] = 0
    started = time.perf_counter()
    for chunk in np.array_split(x, 100):
        format_csv(chunk)
    assert time.perf_counter() - started < 5.0  # ~0.3 s on the reference machine


def test_confusion_and_metrics_match_an_independent_computation() -> None:
    rng = np.random.default_rng(3)
    actual = rng.integers(0, 2, 5000)
    predicted = rng.integers(0, 2, 5000)
    cm = confusion(actual, predicted)
    matrix = np.zeros((2, 2), int)
    np.add.at(matrix, (actual, predicted), 1)
    assert [[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]] == matrix.tolist()
    m = metrics(cm)
    tp, fp, fn = matrix[1, 1], matrix[0, 1], matrix[1, 0]
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert m["accuracy"] == pytest.approx(np.mean(actual == predicted))
    assert m["precision"] == pytest.approx(precision)
    assert m["recall"] == pytest.approx(recall)
    assert m["f1"] == pytest.approx(2 * precision * recall / (precision + recall))


def test_metrics_with_no_positive_predictions_are_zero_not_nan() -> None:
    assert metrics({"tp": 0, "fp": 0, "tn": 10, "fn": 5}) == {
        "accuracy": 10 / 15,
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
    }


def test_evaluation_sends_one_single_row_then_exactly_the_configured_chunks() -> None:
    x, y = _data(1000)
    endpoint = FakeEndpoint()
    report = evaluate_arrays(x, y, endpoint, chunks=100)
    assert len(endpoint.calls) == 101
    assert endpoint.calls[0] == (1, "text/csv")
    assert sum(n for n, _ in endpoint.calls[1:]) == 1000
    assert {ct for _, ct in endpoint.calls} == {"text/csv"}
    predicted = (x.mean(axis=1) > 0.5).astype(int)
    assert report["confusion_matrix"] == confusion(y, predicted)
    assert report["matrix"][1][1] == report["confusion_matrix"]["tp"]
    assert report["single_prediction"]["actual_label"] == int(y[0])
    assert report["requests"] == 101


def test_evaluation_of_fewer_rows_than_chunks_sends_one_row_per_request() -> None:
    x, y = _data(7)
    endpoint = FakeEndpoint()
    evaluate_arrays(x, y, endpoint, chunks=100)
    assert len(endpoint.calls) == 8


def test_chunks_run_in_parallel_and_land_in_order() -> None:
    x, y = _data(400)
    endpoint = FakeEndpoint()
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def slow(body: bytes, content_type: str) -> bytes:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.01)
        try:
            return endpoint(body, content_type)
        finally:
            with lock:
                in_flight[0] -= 1

    report = evaluate_arrays(x, y, slow, chunks=20, parallel=4)
    assert 1 < most[0] <= 4
    assert report["confusion_matrix"] == confusion(y, (x.mean(axis=1) > 0.5).astype(int))


def test_chunks_stay_under_the_payload_limit() -> None:
    x, y = _data(1000, dim=784)
    endpoint = FakeEndpoint()
    limit = 200_000
    report = evaluate_arrays(x, y, endpoint, chunks=2, max_payload_bytes=limit)
    sizes = [len(format_csv(x[:n])) for n, _ in endpoint.calls[1:]]
    assert report["requests"] > 3 and max(sizes) < limit
    assert sum(n for n, _ in endpoint.calls[1:]) == 1000


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"nope": []}',
        b'{"predictions": [{"score": 0.1}]}',
        b'{"predictions": []}',
        b'{"predictions": [{"score": 0.1, "predicted_label": 7}]}',
    ],
)
def test_evaluation_rejects_malformed_endpoint_answers(body: bytes) -> None:
    x, y = _data(3)
    with pytest.raises(EvaluationError):
        evaluate_arrays(x, y, lambda _b, _c: body, chunks=1)


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.mark.parametrize(("mode", "requests"), [("realtime", 1), ("serverless", 2)])
def test_a_serverless_endpoint_gets_requests_within_its_4_mb(
    s3: Any, mode: str, requests: int
) -> None:
    # 380 random rows are ~3.6 MB of CSV: one request for a real-time endpoint
    # (6 MB), two for a serverless one (4 MB).
    rng = np.random.default_rng(6)
    x = rng.random((380, 784), dtype=np.float32)
    y = (rng.random(380) < 0.5).astype(np.float32)
    run = make_run("exec-1", {"endpoint": {"mode": mode}} if mode == "serverless" else {})
    s3.put_object(Bucket=BUCKET, Key="runs/exec-1/data/test/test.rec", Body=encode_dense(x, y))
    data = {
        "test_uri": f"s3://{BUCKET}/runs/exec-1/data/test/",
        "files": {"test": f"s3://{BUCKET}/runs/exec-1/data/test/test.rec"},
    }
    sizes: list[int] = []
    fake = FakeEndpoint()

    def endpoint(body: bytes, content_type: str) -> bytes:
        sizes.append(len(body))
        return fake(body, content_type)

    config = dataclasses.replace(DEFAULTS, evaluation_chunks=1)
    evaluate_deployment(run, data, {"endpoint_name": "ep"}, config, s3, endpoint)
    assert len(sizes) == 1 + requests
    limit = SERVERLESS_MAX_PAYLOAD_BYTES if mode == "serverless" else MAX_PAYLOAD_BYTES
    assert max(sizes) < limit and sum(sizes[1:]) > 3_000_000


def test_evaluate_deployment_reads_test_recordio_and_writes_the_report(s3: Any) -> None:
    rng = np.random.default_rng(5)
    x = rng.random((500, 784), dtype=np.float32)
    y = (rng.random(500) < 0.5).astype(np.float32)
    run = make_run("exec-1")
    s3.put_object(Bucket=BUCKET, Key="runs/exec-1/data/test/test.rec", Body=encode_dense(x, y))
    data = {
        "test_uri": f"s3://{BUCKET}/runs/exec-1/data/test/",
        "files": {"test": f"s3://{BUCKET}/runs/exec-1/data/test/test.rec"},
    }
    deployed = {"endpoint_name": "ep", "endpoint_config_name": "c", "model_name": "m"}
    endpoint = FakeEndpoint()
    out = evaluate_deployment(run, data, deployed, DEFAULTS, s3, endpoint)
    assert set(out) == {
        "confusion_matrix",
        "metrics",
        "single_prediction",
        "report_uri",
        "report_html_uri",
    }
    assert out["report_uri"] == f"s3://{BUCKET}/runs/exec-1/report.json"
    assert len(endpoint.calls) == 1 + DEFAULTS.evaluation_chunks
    report = json.loads(s3.get_object(Bucket=BUCKET, Key="runs/exec-1/report.json")["Body"].read())
    assert report["confusion_matrix"] == out["confusion_matrix"]
    assert report["endpoint_name"] == "ep" and report["rows"] == 500
    assert sum(out["confusion_matrix"].values()) == 500


# -- the sagemaker-runtime transport and throttling ------------------------------------------

TEST_KEY = "runs/exec-1/data/test/test.rec"
DATA = {"test_uri": f"s3://{BUCKET}/runs/exec-1/data/test/"}
DEPLOYED = {"endpoint_name": "ep", "endpoint_config_name": "c", "model_name": "m"}


def _runtime() -> Any:
    return boto3.client("sagemaker-runtime", region_name=REGION)


def _invoke_params(body: bytes = b"0.5,0.25") -> dict[str, Any]:
    return {
        "EndpointName": "ep",
        "ContentType": "text/csv",
        "Accept": "application/json",
        "Body": body,
    }


def _body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def test_endpoint_invoker_sends_csv_and_returns_the_body() -> None:
    runtime = _runtime()
    answer = b'{"predictions": [{"score": 0.9, "predicted_label": 1}]}'
    with stubbed(runtime) as stub:
        stub.add_response(
            "invoke_endpoint",
            {"Body": _body(answer), "ContentType": "application/json"},
            expected_params=_invoke_params(),
        )
        assert endpoint_invoker(runtime, "ep")(b"0.5,0.25", "text/csv") == answer


@pytest.mark.parametrize("code", ["ThrottlingException", "TooManyRequestsException"])
def test_throttled_invoke_endpoint_raises_throttling_error(code: str) -> None:
    runtime = _runtime()
    with stubbed(runtime) as stub:
        stub.add_client_error(
            "invoke_endpoint",
            service_error_code=code,
            service_message="Rate exceeded",
            http_status_code=400,
            expected_params=_invoke_params(),
        )
        with pytest.raises(ThrottlingError, match=r"InvokeEndpoint ep.*Rate exceeded") as raised:
            endpoint_invoker(runtime, "ep")(b"0.5,0.25", "text/csv")
    assert isinstance(raised.value.__cause__, ClientError)


def test_model_errors_from_invoke_endpoint_stay_client_errors() -> None:
    runtime = _runtime()
    with stubbed(runtime) as stub:
        stub.add_client_error(
            "invoke_endpoint",
            service_error_code="ModelError",
            http_status_code=424,
            expected_params=_invoke_params(),
        )
        with pytest.raises(ClientError) as raised:
            endpoint_invoker(runtime, "ep")(b"0.5,0.25", "text/csv")
    assert not isinstance(raised.value, PipelineError)


def test_throttling_mid_evaluation_raises_throttling_error() -> None:
    runtime = _runtime()
    x, y = _data(n=4, dim=2)
    with stubbed(runtime) as stub:
        stub.add_response(
            "invoke_endpoint",
            {"Body": _body(b'{"predictions": [{"score": 0.1, "predicted_label": 0}]}')},
            expected_params=_invoke_params(format_csv(x[:1])),
        )
        stub.add_client_error(
            "invoke_endpoint",
            service_error_code="ThrottlingException",
            http_status_code=400,
            expected_params=_invoke_params(format_csv(x[:2])),
        )
        with pytest.raises(ThrottlingError):
            evaluate_arrays(x, y, endpoint_invoker(runtime, "ep"), chunks=2)


def test_throttled_test_data_read_raises_throttling_error() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    with stubbed(s3) as stub:
        stub.add_client_error(
            "get_object",
            service_error_code="SlowDown",
            http_status_code=503,
            expected_params={"Bucket": BUCKET, "Key": TEST_KEY},
        )
        with pytest.raises(ThrottlingError, match="GetObject"):
            evaluate_deployment(make_run("exec-1"), DATA, DEPLOYED, DEFAULTS, s3, FakeEndpoint())


def test_missing_test_data_still_raises_source_not_found() -> None:
    s3 = boto3.client("s3", region_name=REGION)
    with stubbed(s3) as stub:
        stub.add_client_error(
            "get_object",
            service_error_code="NoSuchKey",
            http_status_code=404,
            expected_params={"Bucket": BUCKET, "Key": TEST_KEY},
        )
        with pytest.raises(SourceNotFoundError):
            evaluate_deployment(make_run("exec-1"), DATA, DEPLOYED, DEFAULTS, s3, FakeEndpoint())


@pytest.mark.parametrize("code", ["SlowDown", "RequestLimitExceeded"])
def test_throttled_report_write_raises_throttling_error(code: str) -> None:
    rng = np.random.default_rng(5)
    x = rng.random((20, 784), dtype=np.float32)
    y = (rng.random(20) < 0.5).astype(np.float32)
    s3 = boto3.client("s3", region_name=REGION)
    with stubbed(s3) as stub:
        stub.add_response(
            "get_object",
            {"Body": _body(encode_dense(x, y))},
            expected_params={"Bucket": BUCKET, "Key": TEST_KEY},
        )
        # The scores and the page first; report.json, which the registry points at, last.
        for name, content_type in (
            ("predictions.csv", "text/csv"),
            ("report.html", "text/html; charset=utf-8"),
        ):
            stub.add_response(
                "put_object",
                {},
                expected_params={
                    "Bucket": BUCKET,
                    "Key": f"runs/exec-1/{name}",
                    "Body": ANY,
                    "ContentType": content_type,
                },
            )
        stub.add_client_error(
            "put_object",
            service_error_code=code,
            http_status_code=503,
            expected_params={
                "Bucket": BUCKET,
                "Key": "runs/exec-1/report.json",
                "Body": ANY,
                "ContentType": "application/json",
            },
        )
        with pytest.raises(ThrottlingError, match="report"):
            evaluate_deployment(make_run("exec-1"), DATA, DEPLOYED, DEFAULTS, s3, FakeEndpoint())
