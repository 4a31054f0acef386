from __future__ import annotations

import json

import boto3
import httpx
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from pipeline_core.recordio import encode_dense
from training.model import LinearModel
from training.serving import (
    SERVERLESS_MAX_BODY_BYTES,
    BackgroundServer,
    ModelRegistry,
    create_app,
)

DIM = 5


def make_model(seed: int, threshold: float = 0.5) -> LinearModel:
    rng = np.random.default_rng(seed)
    return LinearModel(
        weights=rng.normal(size=DIM).astype(np.float32),
        bias=0.1,
        mean=rng.normal(size=DIM).astype(np.float32),
        std=rng.uniform(0.5, 2, size=DIM).astype(np.float32),
        threshold=threshold,
    )


MODEL = make_model(0)
ROWS = np.random.default_rng(9).normal(size=(7, DIM)).astype(np.float32)


def csv(rows: np.ndarray) -> bytes:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in rows).encode()


def expected(model: LinearModel, rows: np.ndarray) -> list[dict]:
    scores, labels = model.predict(rows)
    return [
        {"score": float(s), "predicted_label": int(lab)}
        for s, lab in zip(scores, labels, strict=True)
    ]


def check(predictions: list[dict], model: LinearModel, rows: np.ndarray) -> None:
    want = expected(model, rows)
    assert [p["predicted_label"] for p in predictions] == [w["predicted_label"] for w in want]
    assert np.allclose([p["score"] for p in predictions], [w["score"] for w in want], atol=1e-6)
    assert all(isinstance(p["predicted_label"], int) for p in predictions)


@pytest.fixture(scope="module")
def single():
    """The CLI's shape: one default model answering every path."""
    with BackgroundServer(create_app(ModelRegistry(default=MODEL))) as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client


@pytest.fixture(scope="module")
def multi():
    registry = ModelRegistry()
    with BackgroundServer(create_app(registry, account="123456789012")) as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield registry, client, server


def post(client, body, content_type, accept=None, path="/invocations"):
    headers = {"Content-Type": content_type}
    if accept:
        headers["Accept"] = accept
    return client.post(path, content=body, headers=headers)


def test_ping(single):
    assert single.get("/ping").status_code == 200


@pytest.mark.parametrize("path", ["/invocations", "/endpoints/anything/invocations"])
def test_csv_rows_get_scores_and_labels(single, path):
    r = post(single, csv(ROWS), "text/csv", path=path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    check(r.json()["predictions"], MODEL, ROWS)


def test_csv_single_row_with_crlf_and_trailing_newline(single):
    r = post(single, csv(ROWS[:2]).replace(b"\n", b"\r\n") + b"\r\n", "text/csv; charset=utf-8")
    check(r.json()["predictions"], MODEL, ROWS[:2])


def test_json_features_and_data_forms(single):
    body = {"instances": [{"features": row.tolist()} for row in ROWS[:3]]}
    check(post(single, json.dumps(body), "application/json").json()["predictions"], MODEL, ROWS[:3])
    body = {"instances": [{"data": {"features": {"values": row.tolist()}}} for row in ROWS[:3]]}
    check(post(single, json.dumps(body), "application/json").json()["predictions"], MODEL, ROWS[:3])


def test_recordio_protobuf(single):
    r = post(single, encode_dense(ROWS), "application/x-recordio-protobuf")
    check(r.json()["predictions"], MODEL, ROWS)
    labelled = encode_dense(ROWS, np.ones(len(ROWS), dtype=np.float32))
    check(
        post(single, labelled, "application/x-recordio-protobuf").json()["predictions"], MODEL, ROWS
    )


def test_jsonlines_accept(single):
    r = post(single, csv(ROWS), "text/csv", accept="application/jsonlines")
    assert r.headers["content-type"].startswith("application/jsonlines")
    lines = [json.loads(line) for line in r.text.strip().split("\n")]
    check(lines, MODEL, ROWS)


def test_wildcard_accept_is_json(single):
    assert "predictions" in post(single, csv(ROWS), "text/csv", accept="*/*").json()


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status", "message"),
    [
        (csv(ROWS[:, :4]), "text/csv", None, 400, "feature_dim=5"),
        (b"1,2,3,4,5\n1,2,3", "text/csv", None, 400, "number of columns"),
        (b"1,2,x,4,5", "text/csv", None, 400, "malformed CSV"),
        (b"1,2,nan,4,5", "text/csv", None, 400, "finite"),
        (b"", "text/csv", None, 400, "empty"),
        (b"{not json", "application/json", None, 400, "malformed JSON"),
        (b'{"instances": []}', "application/json", None, 400, "instances"),
        (b'{"instances": [{"features": [1, 2]}]}', "application/json", None, 400, "2 features"),
        (
            b'{"instances": [{"features": [1, 2, "a", 4, 5]}]}',
            "application/json",
            None,
            400,
            "numbers",
        ),
        (b"garbage", "application/x-recordio-protobuf", None, 400, "recordIO"),
        (encode_dense(ROWS[:, :3]), "application/x-recordio-protobuf", None, 400, "feature_dim=5"),
        (b"1,2,3,4,5", "text/plain", None, 415, "Content type"),
        (b"1,2,3,4,5", "text/csv", "text/html", 406, "Accept type"),
    ],
)
def test_bad_requests_get_readable_4xx_and_the_server_stays_healthy(
    single, body, content_type, accept, status, message
):
    r = post(single, body, content_type, accept=accept)
    assert r.status_code == status
    assert message in r.json()["message"]
    assert single.get("/ping").status_code == 200
    assert post(single, csv(ROWS[:1]), "text/csv").status_code == 200


def test_body_limit_is_6_mb(single):
    row = b",".join([b"0.5"] * DIM) + b"\n"
    under = row * ((6 * 1024 * 1024 - 1) // len(row))
    assert post(single, under, "text/csv").status_code == 200
    over = b"1" * (6 * 1024 * 1024 + 1)
    r = post(single, over, "text/csv")
    assert r.status_code == 413 and "larger than" in r.json()["message"]
    assert single.get("/ping").status_code == 200


def test_unknown_endpoint_is_a_400_validation_error_with_a_sagemaker_message(multi):
    _, client, _ = multi
    r = post(client, csv(ROWS), "text/csv", path="/endpoints/nope/invocations")
    assert r.status_code == 400 and r.headers["x-amzn-ErrorType"] == "ValidationError"
    assert r.json()["message"] == "Endpoint nope of account 123456789012 not found."
    assert post(client, csv(ROWS), "text/csv").status_code == 503  # no default model


def test_a_serverless_endpoint_refuses_bodies_over_4_mb_a_realtime_one_takes(multi):
    registry, client, _ = multi
    registry.register("sls", MODEL, SERVERLESS_MAX_BODY_BYTES)
    registry.register("rt", MODEL)
    row = b",".join([b"0.5"] * DIM) + b"\n"
    body = row * ((5 * 1024 * 1024) // len(row))  # 5 MB: between the two limits
    r = post(client, body, "text/csv", path="/endpoints/sls/invocations")
    assert r.status_code == 413 and f"larger than {SERVERLESS_MAX_BODY_BYTES}" in r.text
    assert post(client, body, "text/csv", path="/endpoints/rt/invocations").status_code == 200
    assert post(client, csv(ROWS), "text/csv", path="/endpoints/sls/invocations").status_code == 200
    registry.register("sls", MODEL)  # redeployed as real-time: the server's limit again
    assert post(client, body, "text/csv", path="/endpoints/sls/invocations").status_code == 200
    assert registry.remove("sls") and registry.remove("rt")  # the fixture is shared


def test_registry_register_replace_remove(multi):
    registry, client, _ = multi
    path = "/endpoints/blue-green/invocations"
    registry.register("blue-green", MODEL)
    check(post(client, csv(ROWS), "text/csv", path=path).json()["predictions"], MODEL, ROWS)
    other = make_model(1, threshold=0.3)
    registry.register("blue-green", other)
    check(post(client, csv(ROWS), "text/csv", path=path).json()["predictions"], other, ROWS)
    assert registry.names() == ["blue-green"]
    assert registry.remove("blue-green") and not registry.remove("blue-green")
    assert post(client, csv(ROWS), "text/csv", path=path).status_code == 400


def _runtime(url: str):
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def test_boto3_invoke_endpoint(multi):
    registry, _, server = multi
    registry.register("mnist-ll-endpoint", MODEL)
    runtime = _runtime(server.url)
    response = runtime.invoke_endpoint(
        EndpointName="mnist-ll-endpoint", ContentType="text/csv", Body=csv(ROWS)
    )
    assert response["ContentType"].startswith("application/json")
    check(json.loads(response["Body"].read())["predictions"], MODEL, ROWS)
    response = runtime.invoke_endpoint(
        EndpointName="mnist-ll-endpoint",
        ContentType="application/json",
        Accept="application/jsonlines",
        Body=json.dumps({"instances": [{"features": ROWS[0].tolist()}]}),
    )
    check([json.loads(response["Body"].read())], MODEL, ROWS[:1])


def test_boto3_errors_carry_the_message(multi):
    registry, _, server = multi
    registry.register("mnist-ll-endpoint", MODEL)
    runtime = _runtime(server.url)
    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(EndpointName="missing", ContentType="text/csv", Body=csv(ROWS))
    assert info.value.response["Error"]["Code"] == "ValidationError"
    assert "Endpoint missing of account" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(
            EndpointName="mnist-ll-endpoint", ContentType="text/csv", Body=b"1,2"
        )
    assert info.value.response["Error"]["Code"] == "ModelError"
    assert "feature_dim=5" in info.value.response["Error"]["Message"]


def test_model_error_through_the_runtime_api_is_424_with_the_original_status(multi):
    registry, _, server = multi
    registry.register("mnist-ll-endpoint", MODEL)
    with pytest.raises(ClientError) as info:
        _runtime(server.url).invoke_endpoint(
            EndpointName="mnist-ll-endpoint", ContentType="text/plain", Body=b"1,2"
        )
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["Error"]["Code"] == "ModelError"
    # botocore parses the modeled members of ModelError from the body
    assert response["OriginalStatusCode"] == 415
    assert "Content type" in json.loads(response["OriginalMessage"])["message"]
    assert response["LogStreamArn"].endswith("/aws/sagemaker/Endpoints/mnist-ll-endpoint")
    assert "Received client error (415) from primary" in response["Error"]["Message"]


def test_body_over_6_mb_is_a_413_the_boto3_client_really_receives(multi):
    registry, _, server = multi
    registry.register("mnist-ll-endpoint", MODEL)
    with pytest.raises(ClientError) as info:
        _runtime(server.url).invoke_endpoint(
            EndpointName="mnist-ll-endpoint",
            ContentType="text/csv",
            Body=b"1" * (6 * 1024 * 1024 + 1),
        )
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert "larger than" in info.value.response["Error"]["Message"]


def test_recordio_response_decodes_to_the_json_predictions(multi):
    registry, _, server = multi
    registry.register("mnist-ll-endpoint", MODEL)
    response = _runtime(server.url).invoke_endpoint(
        EndpointName="mnist-ll-endpoint",
        ContentType="application/x-recordio-protobuf",
        Accept="application/x-recordio-protobuf",
        Body=encode_dense(ROWS),
    )
    assert response["ContentType"] == "application/x-recordio-protobuf"
    body = response["Body"].read()
    records = _decode_label_records(body)
    want = expected(MODEL, ROWS)
    assert [int(r["predicted_label"]) for r in records] == [w["predicted_label"] for w in want]
    assert np.allclose([r["score"] for r in records], [w["score"] for w in want], atol=1e-6)


def _decode_label_records(body: bytes) -> list[dict[str, float]]:
    """A minimal protobuf reader for Record.label maps (independent of the writer)."""
    import struct

    def varint(buf: bytes, pos: int) -> tuple[int, int]:
        shift = value = 0
        while True:
            byte = buf[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value, pos

    def fields(buf: bytes) -> list[tuple[int, bytes]]:
        out, pos = [], 0
        while pos < len(buf):
            tag, pos = varint(buf, pos)
            size, pos = varint(buf, pos)
            out.append((tag >> 3, buf[pos : pos + size]))
            pos += size
        return out

    records, pos = [], 0
    while pos < len(body):
        magic, size = struct.unpack_from("<II", body, pos)
        assert magic == 0xCED7230A
        payload = body[pos + 8 : pos + 8 + size]
        pos += 8 + size + (-size % 4)
        record = {}
        for number, entry in fields(payload):
            assert number == 2  # label map only
            parts = dict(fields(entry))
            tensor = dict(fields(parts[2]))[2]
            values = dict(fields(tensor))[1]
            record[parts[1].decode()] = struct.unpack("<f", values)[0]
        records.append(record)
    return records


def test_body_over_6_mb_to_an_unknown_endpoint_is_413_too(multi):
    _, client, _ = multi
    r = post(client, b"1" * (6 * 1024 * 1024 + 1), "text/csv", path="/endpoints/nope/invocations")
    assert r.status_code == 413 and "larger than" in r.json()["message"]
