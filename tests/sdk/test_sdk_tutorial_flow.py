"""The tutorial's notebook code, on the SageMaker Python SDK v2 (``.venv-sdk``),
against ``python -m local services``: fit, register, tune, deploy, predict
(CSV/JSON and the default recordIO ``LinearLearnerPredictor``), delete."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.digits import make_digits

ROOT = Path(__file__).resolve().parents[2]
SDK_PYTHON = ROOT / ".venv-sdk" / "bin" / "python"


@pytest.fixture(scope="module")
def flow(account: dict[str, str]) -> dict[str, object]:
    if not SDK_PYTHON.exists():
        pytest.fail(".venv-sdk is missing: run `make setup`")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **account,
        "FLOW_MAX_JOBS": "2",
        "FLOW_TUNER_SEED": "1",  # the same two jobs whatever the minute
        "FLOW_FAST_SLEEP": "1",
        "FLOW_SCHEMA_CHECKED_ONCE": "1",
        "FLOW_FIT_LOGS": "None",
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }
    proc = subprocess.run(
        [str(SDK_PYTHON), str(Path(__file__).with_name("tutorial_flow.py"))],
        cwd=account["FLOW_WORK"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    Path(account["FLOW_WORK"], "flow.out").write_text(proc.stdout + proc.stderr)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("FLOW-RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-6000:]
    result: dict[str, object] = json.loads(lines[-1][len("FLOW-RESULT ") :])
    return result


def test_env_file_points_every_service_at_loopback(account: dict[str, str]) -> None:
    for service in ("S3", "STS", "CLOUDWATCH_LOGS", "SNS", "SFN", "SCHEDULER", "DYNAMODB"):
        assert account[f"AWS_ENDPOINT_URL_{service}"].startswith("http://127.0.0.1:")
    for service in ("SAGEMAKER", "SAGEMAKER_RUNTIME"):
        assert account[f"AWS_ENDPOINT_URL_{service}"].startswith("http://127.0.0.1:")
    config = json.loads(Path(account["SAGEMAKER_USER_CONFIG_OVERRIDE"]).read_text())
    modules = config["SageMaker"]["PythonSDK"]["Modules"]
    assert modules["Session"]["DefaultS3Bucket"] == "sagemaker-us-east-1-123456789012"
    assert modules["TelemetryOptOut"] is True


def test_sdk_fit_tune_deploy_predict_delete(flow: dict[str, object]) -> None:
    assert str(flow["fit_artifact"]).endswith(f"/{flow['fit_job']}/output/model.tar.gz")
    assert str(flow["best_training_job"]).startswith("linear-learner-")
    assert flow["attached_best"] == flow["best_training_job"]  # HyperparameterTuner.attach
    assert int(str(flow["best_metric_rows"])) >= 1  # a tuned job's metrics are in CloudWatch too
    # TrainingJobAnalytics: the fit's metrics, per epoch and final, from CloudWatch
    assert {"train:objective_loss", "train:binary_f_beta"} <= set(flow["fit_metric_names"])
    assert flow["analytics_rows"] == 2  # tuner.analytics().dataframe(): one row per job
    fit_single = flow["fit_single"]
    assert isinstance(fit_single, dict) and fit_single["predictions"][0]["predicted_label"] in (
        0,
        1,
    )
    single = flow["single"]
    assert isinstance(single, dict) and single["predictions"][0]["predicted_label"] in (0, 1)
    confusion = flow["confusion"]
    assert isinstance(confusion, dict) and sum(confusion.values()) == 400
    assert float(str(flow["accuracy"])) > 0.95 and float(str(flow["f1"])) > 0.8
    recordio = flow["recordio"]
    assert isinstance(recordio, list) and len(recordio) == 5
    assert all(0.0 <= r["score"] <= 1.0 for r in recordio)
    assert flow["recordio_matches_json"] is True
    assert flow["endpoint_deleted"] is True and flow["model_deleted"] is True
    assert flow["record_set_channel"] == "ManifestFile"
    assert flow["record_set_job_status"] == "Completed", flow["record_set_failure"]
    assert flow["record_set_loss"] == ["hinge_loss", "1.5"]


def test_sdk_registers_a_fitted_estimator_through_search(flow: dict[str, object]) -> None:
    """``Estimator.register()`` Searches for the group and the training job."""
    group = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mnist-ll-sdk-registered"
    assert flow["registered_arns"] == [f"{group}/1", f"{group}/2"]
    assert flow["registered_listed"] == flow["registered_arns"]
    assert flow["register_listed_groups"] == 0  # Search answered: no fallback
    assert str(flow["searched_training_arn"]).endswith(f":training-job/{flow['fit_job']}")


def test_training_logs_parse_with_the_algorithms_metric_regexes(flow: dict[str, object]) -> None:
    from training.metric_definitions import METRIC_DEFINITIONS

    streams = flow["log_streams"]
    assert isinstance(streams, list) and len(streams) == 1
    assert re.fullmatch(rf"{flow['fit_job']}/algo-1-\d+", streams[0])
    lines = flow["log_lines"]
    assert isinstance(lines, list)
    found = {
        definition["Name"]
        for definition in METRIC_DEFINITIONS
        for line in lines
        if re.search(definition["Regex"], line)
    }
    assert "train:objective_loss" in found


def test_async_inference_writes_the_answer_or_the_failure_to_s3(
    account: dict[str, str], flow: dict[str, object]
) -> None:
    import boto3
    from botocore.exceptions import ClientError

    env = {k: v for k, v in account.items() if k.startswith("AWS_")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        sm, runtime, s3 = (boto3.client(n) for n in ("sagemaker", "sagemaker-runtime", "s3"))
        bucket = "sagemaker-us-east-1-123456789012"  # the SDK's default bucket, made by the account
        role = account["MNIST_LL_ROLE_ARN"]
        image = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
        sm.create_model(
            ModelName="async-m",
            ExecutionRoleArn=role,
            PrimaryContainer={"Image": image, "ModelDataUrl": str(flow["fit_artifact"])},
        )
        variant = {"VariantName": "AllTraffic", "ModelName": "async-m",
                   "InitialInstanceCount": 1, "InstanceType": "ml.m4.xlarge"}  # fmt: skip
        sm.create_endpoint_config(
            EndpointConfigName="async-c",
            ProductionVariants=[variant],
            AsyncInferenceConfig={
                "OutputConfig": {
                    "S3OutputPath": f"s3://{bucket}/async/out",
                    "S3FailurePath": f"s3://{bucket}/async/failed",
                }
            },
        )
        sm.create_endpoint(EndpointName="async-e", EndpointConfigName="async-c")
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName="async-e", WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        # a running endpoint keeps its config's async setting when the config goes
        sm.delete_endpoint_config(EndpointConfigName="async-c")
        described = sm.describe_endpoint(EndpointName="async-e")
        assert described["AsyncInferenceConfig"]["OutputConfig"]["S3FailurePath"]
        rows = make_digits(3, 9)[0]
        csv = "\n".join(",".join(f"{v:.3f}" for v in row) for row in rows).encode()
        s3.put_object(Bucket=bucket, Key="async/in.csv", Body=csv)
        # as the SDK's AsyncPredictor sends it: the content type on the object only
        s3.put_object(Bucket=bucket, Key="async/bad.csv", Body=b"1,2,3", ContentType="text/csv")
        answers = {
            "in": runtime.invoke_endpoint_async(
                EndpointName="async-e",
                ContentType="text/csv",
                InputLocation=f"s3://{bucket}/async/in.csv",
            ),
            "bad": runtime.invoke_endpoint_async(
                EndpointName="async-e", InputLocation=f"s3://{bucket}/async/bad.csv"
            ),
            "inline": runtime.invoke_endpoint_async(
                EndpointName="async-e",
                ContentType="text/csv",
                Body=csv,
                InferenceId="mine-1",
                Filename="answer.json",
            ),
        }
        ok, bad, inline = answers["in"], answers["bad"], answers["inline"]
        assert ok["ResponseMetadata"]["HTTPStatusCode"] == 202 and ok["InferenceId"]
        assert ok["OutputLocation"] == f"s3://{bucket}/async/out/{ok['InferenceId']}.out"
        assert (
            bad["FailureLocation"] == f"s3://{bucket}/async/failed/{bad['InferenceId']}-error.out"
        )
        assert inline["InferenceId"] == "mine-1"
        assert inline["OutputLocation"] == f"s3://{bucket}/async/out/answer.json"

        def read(uri: str) -> bytes:
            key = uri.removeprefix(f"s3://{bucket}/")
            for _ in range(100):
                try:
                    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                except ClientError:
                    time.sleep(0.1)
            raise AssertionError(f"{uri} never appeared")

        predictions = json.loads(read(ok["OutputLocation"]))["predictions"]
        assert len(predictions) == 3 and {"score", "predicted_label"} <= set(predictions[0])
        assert json.loads(read(inline["OutputLocation"]))["predictions"] == predictions
        failure = json.loads(read(bad["FailureLocation"]))  # the container's error body
        assert failure["error"] == "ModelError" and "784" in failure["message"]  # 3 features
        sm.create_endpoint_config(EndpointConfigName="sync-c", ProductionVariants=[variant])
        sm.create_endpoint(EndpointName="sync-e", EndpointConfigName="sync-c")
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName="sync-e", WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        with pytest.raises(ClientError, match="not an asynchronous inference endpoint"):
            runtime.invoke_endpoint_async(
                EndpointName="sync-e", InputLocation=f"s3://{bucket}/async/in.csv"
            )
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
