"""The tutorial's flow in the SageMaker Python SDK v3 (``.venv-sdk3``), against
``python -m local services`` with only its env file sourced:

    .venv/bin/python -m local services --env-file .local-aws.env &
    source .local-aws.env && mkdir -p runs/v3 && cd runs/v3
    ../../.venv-sdk3/bin/python ../../tests/sdk/tutorial_flow_v3.py

v3 has no Estimator, LinearLearner or Predictor: ``ModelTrainer`` trains,
``HyperparameterTuner`` tunes, ``ModelBuilder`` deploys an ``Endpoint`` that
``invoke`` calls. v3's recordIO helpers raise NotImplementedError, so the data
goes up as CSV, label first (what Linear Learner reads from ``text/csv``). The
role is ``MNIST_LL_ROLE_ARN`` (``get_execution_role()`` calls STS at a fixed
URL); the SDK validates it against the local account's IAM as it would on AWS.

``FLOW_ROWS`` cuts the data, ``FLOW_MAX_JOBS``/``FLOW_PARALLEL_JOBS`` the
tuning (default 6 jobs, 2 at a time, as in the tutorial), ``FLOW_TUNER_SEED``
fixes the tuner's ``random_seed``, and ``flow_speed.py``'s knobs
(``FLOW_FAST_SLEEP=1``, ``FLOW_SCHEMA_CHECKED_ONCE=1``) shorten the SDK's
polling sleeps (5 s between describes) and check its config schema once.
Prints one ``FLOW-RESULT`` JSON line.
"""

import gzip
import io
import json
import os
import pickle
import sys
import time

import flow_speed  # beside this file; before the SDK

flow_speed.apply()

import boto3
import numpy as np
from sagemaker.core import image_uris
from sagemaker.core.helper.iam_role_resolver import RoleValidationError
from sagemaker.core.helper.session_helper import Session
from sagemaker.core.parameter import ContinuousParameter, IntegerParameter
from sagemaker.core.resources import Endpoint, EndpointConfig, Model, TrainingJob
from sagemaker.core.training.configs import Compute, InputData, StoppingCondition
from sagemaker.serve import ModelBuilder
from sagemaker.train import ModelTrainer
from sagemaker.train.tuner import HyperparameterTuner

started = time.monotonic()
ROWS = int(os.environ.get("FLOW_ROWS", "0")) or None
MAX_JOBS = int(os.environ.get("FLOW_MAX_JOBS", "6"))
PARALLEL_JOBS = int(os.environ.get("FLOW_PARALLEL_JOBS", "2"))
TUNER_SEED = int(os.environ["FLOW_TUNER_SEED"]) if "FLOW_TUNER_SEED" in os.environ else None
role = os.environ["MNIST_LL_ROLE_ARN"]
region = boto3.Session().region_name
out: dict = {}
s3 = boto3.client("s3")
bucket = Session().default_bucket()  # from the SDK config the env file names
prefix = "sagemaker/DEMO-linear-mnist-v3"

s3.download_file(
    f"sagemaker-example-files-prod-{region}", "datasets/image/MNIST/mnist.pkl.gz", "mnist.pkl.gz"
)
with gzip.open("mnist.pkl.gz", "rb") as f:
    train_set, valid_set, test_set = pickle.load(f, encoding="latin1")
if ROWS:
    train_set = (train_set[0][:ROWS], train_set[1][:ROWS])
    valid_set = (valid_set[0][: ROWS // 2], valid_set[1][: ROWS // 2])
    test_set = (test_set[0][: ROWS // 2], test_set[1][: ROWS // 2])


def upload_csv(images, digits, channel):
    """Label (1 for the digit 0) first, then the 784 pixels; one row a line."""
    labels = (np.asarray(digits) == 0).astype("float32")
    buf = io.BytesIO()
    np.savetxt(buf, np.column_stack([labels, images]), delimiter=",", fmt="%g")
    key = f"{prefix}/{channel}/data.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=buf.getvalue())
    return f"s3://{bucket}/{key}"


channels = [
    InputData(channel_name="train", data_source=upload_csv(*train_set, "train"),
              content_type="text/csv"),
    InputData(channel_name="validation", data_source=upload_csv(*valid_set, "validation"),
              content_type="text/csv"),
]  # fmt: skip
out["upload_seconds"] = round(time.monotonic() - started, 1)

container = image_uris.retrieve("linear-learner", region)
trainer = ModelTrainer(
    training_image=container,
    role=role,
    compute=Compute(instance_type="ml.c4.xlarge", instance_count=1),
    stopping_condition=StoppingCondition(max_runtime_in_seconds=3600),
    hyperparameters={
        "feature_dim": 784,
        "predictor_type": "binary_classifier",
        "mini_batch_size": 200,
    },
    base_job_name="linear-learner-v3",
)
trainer.train(input_data_config=channels, wait=True, logs=False)
fit_job = trainer._latest_training_job.refresh()
out["fit_job"] = fit_job.training_job_name
out["fit_status"] = fit_job.training_job_status
out["fit_artifact"] = fit_job.model_artifacts.s3_model_artifacts

# Beyond the tutorial: the SDK's role check is real. A role SageMaker may
# assume but with no permissions is refused before any job starts.
iam = boto3.client("iam")
trust = iam.get_role(RoleName=role.rsplit("/", 1)[-1])["Role"]["AssumeRolePolicyDocument"]
bare = "linear-learner-v3-no-permissions"
try:
    iam.create_role(RoleName=bare, AssumeRolePolicyDocument=json.dumps(trust))
except iam.exceptions.EntityAlreadyExistsException:
    pass
try:
    ModelTrainer(training_image=container, role=iam.get_role(RoleName=bare)["Role"]["Arn"])
    out["bare_role"] = "accepted"
except RoleValidationError as e:
    out["bare_role"] = [line for line in str(e).splitlines() if "Missing" in line]

tuner = HyperparameterTuner(
    model_trainer=trainer,
    objective_metric_name="validation:binary_f_beta",
    hyperparameter_ranges={
        "wd": ContinuousParameter(1e-7, 1, scaling_type="Auto"),
        "learning_rate": ContinuousParameter(1e-5, 1, scaling_type="Auto"),
        "mini_batch_size": IntegerParameter(100, 2000, scaling_type="Auto"),
    },
    objective_type="Maximize",
    max_jobs=MAX_JOBS,
    max_parallel_jobs=PARALLEL_JOBS,
    random_seed=TUNER_SEED,
)
tuner.tune(inputs=channels, wait=True)
tuning = tuner.describe()
out["tuning_status"] = tuning.hyper_parameter_tuning_job_status
out["tuning_counts"] = tuning.training_job_status_counters.completed
out["best_training_job"] = tuner.best_training_job()
out["best_objective"] = (
    tuning.best_training_job.final_hyper_parameter_tuning_job_objective_metric.value
)
frame = tuner.analytics().dataframe()
out["analytics_rows"] = len(frame)
out["analytics_best"] = float(frame["FinalObjectiveValue"].max())

best_artifact = TrainingJob.get(out["best_training_job"]).model_artifacts.s3_model_artifacts
builder = ModelBuilder(
    image_uri=container,
    s3_model_data_url=best_artifact,
    role_arn=role,
    instance_type="ml.m4.xlarge",
)
builder.build()
endpoint = builder.deploy(initial_instance_count=1)
endpoint = Endpoint.get(endpoint.endpoint_name)
out["endpoint"] = endpoint.endpoint_name
out["endpoint_status"] = endpoint.endpoint_status


def predict(rows):
    body = "\n".join(",".join(f"{v:g}" for v in row) for row in np.atleast_2d(rows))
    answer = endpoint.invoke(body=body, content_type="text/csv", accept="application/json").body
    raw = answer.read() if hasattr(answer, "read") else answer
    return json.loads(raw)["predictions"]


out["single"] = predict(train_set[0][30:31])
predictions = []
for array in np.array_split(test_set[0], 100):
    predictions += [p["predicted_label"] for p in predict(array)]
predictions = np.array(predictions)
actual = (test_set[1] == 0).astype(int)
tp = int(((predictions == 1) & (actual == 1)).sum())
fp = int(((predictions == 1) & (actual == 0)).sum())
fn = int(((predictions == 0) & (actual == 1)).sum())
tn = int(((predictions == 0) & (actual == 0)).sum())
out["confusion"] = {"tp": tp, "fp": fp, "fn": fn, "tn": tn}
out["accuracy"] = (tp + tn) / len(actual)
out["f1"] = 2 * tp / max(1, 2 * tp + fp + fn)

# Delete what the deploy created: the endpoint, its config and its model.
config_name = endpoint.endpoint_config_name
model_names = [v.model_name for v in EndpointConfig.get(config_name).production_variants]
endpoint.delete()
EndpointConfig.get(config_name).delete()
for name in model_names:
    Model.get(name).delete()
out["deleted"] = []
sm = boto3.client("sagemaker")
for kind, call, key in (
    ("endpoint", sm.describe_endpoint, {"EndpointName": endpoint.endpoint_name}),
    ("endpoint-config", sm.describe_endpoint_config, {"EndpointConfigName": config_name}),
    ("model", sm.describe_model, {"ModelName": model_names[0]}),
):
    for _ in range(50):
        try:
            call(**key)
        except sm.exceptions.ClientError:
            out["deleted"].append(kind)
            break
        time.sleep(0.2)
out["seconds"] = round(time.monotonic() - started, 1)
print("\nFLOW-RESULT " + json.dumps(out, default=str))
sys.stdout.flush()
