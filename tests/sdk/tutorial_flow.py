"""The tutorial notebook's code, run with the SageMaker Python SDK v2 (``.venv-sdk``)
against ``python -m local services`` (its env file sourced into the environment).

Only four things differ from the notebook: the role ARN (``get_execution_role()``
needs a notebook instance), the row and job counts (``FLOW_ROWS``, ``FLOW_MAX_JOBS``:
the suite keeps them small), with ``FLOW_TUNER_SEED`` the tuner's ``random_seed``
(the SDK names a tuning job by the minute, and a name without a seed seeds
the search, so a 2-job search would otherwise change with the clock) and the
suite's speed knobs of ``flow_speed.py`` (``FLOW_FAST_SLEEP=1`` shortens the
SDK's polling sleeps; ``FLOW_SCHEMA_CHECKED_ONCE=1`` checks the SDK's config
schema against its metaschema once, not at every config lookup). Prints one
JSON line with what it saw.
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
import sagemaker
import sagemaker.amazon.common as smac
from sagemaker import image_uris
from sagemaker.deserializers import JSONDeserializer
from sagemaker.model_card.model_card import TrainingDetails
from sagemaker.serializers import CSVSerializer
from sagemaker.tuner import ContinuousParameter, HyperparameterTuner, IntegerParameter

ROWS = int(os.environ.get("FLOW_ROWS", "0")) or None
MAX_JOBS = int(os.environ.get("FLOW_MAX_JOBS", "6"))
TUNER_SEED = int(os.environ["FLOW_TUNER_SEED"]) if "FLOW_TUNER_SEED" in os.environ else None
role = os.environ["MNIST_LL_ROLE_ARN"]
out = {}

sess = sagemaker.Session()
bucket = sess.default_bucket()
prefix = "sagemaker/DEMO-linear-mnist"
region = boto3.Session().region_name

s3 = boto3.client("s3")
s3.download_file(
    f"sagemaker-example-files-prod-{region}", "datasets/image/MNIST/mnist.pkl.gz", "mnist.pkl.gz"
)
with gzip.open("mnist.pkl.gz", "rb") as f:
    train_set, valid_set, test_set = pickle.load(f, encoding="latin1")
if ROWS:
    train_set = (train_set[0][:ROWS], train_set[1][:ROWS])
    valid_set = (valid_set[0][: ROWS // 2], valid_set[1][: ROWS // 2])
    test_set = (test_set[0][: ROWS // 2], test_set[1][: ROWS // 2])

vectors = np.array([t.tolist() for t in train_set[0]]).astype("float32")
labels = np.where(np.array([t.tolist() for t in train_set[1]]) == 0, 1, 0).astype("float32")
buf = io.BytesIO()
smac.write_numpy_to_dense_tensor(buf, vectors, labels)
buf.seek(0)
key = "recordio-pb-data"
boto3.resource("s3").Bucket(bucket).Object(os.path.join(prefix, "train", key)).upload_fileobj(buf)
s3_train_data = f"s3://{bucket}/{prefix}/train/{key}"
output_location = f"s3://{bucket}/{prefix}/output"

vectors = np.array([t.tolist() for t in valid_set[0]]).astype("float32")
labels = np.where(np.array([t.tolist() for t in valid_set[1]]) == 0, 1, 0).astype("float32")
buf = io.BytesIO()
smac.write_numpy_to_dense_tensor(buf, vectors, labels)
buf.seek(0)
boto3.resource("s3").Bucket(bucket).Object(os.path.join(prefix, "validation", key)).upload_fileobj(
    buf
)
s3_validation_data = f"s3://{bucket}/{prefix}/validation/{key}"

container = image_uris.retrieve(region=region, framework="linear-learner")
linear = sagemaker.estimator.Estimator(
    container,
    role,
    instance_count=1,
    instance_type="ml.c4.xlarge",
    output_path=output_location,
    sagemaker_session=sess,
)
linear.set_hyperparameters(feature_dim=784, predictor_type="binary_classifier", mini_batch_size=200)
linear.fit({"train": s3_train_data}, logs=os.environ.get("FLOW_FIT_LOGS", "All"))
out["fit_job"] = linear.latest_training_job.name
out["fit_artifact"] = linear.model_data
# Metrics from CloudWatch, found by the algorithm's MetricDefinitions.
fit_metrics = linear.training_job_analytics.dataframe()
out["fit_metric_names"] = sorted(set(fit_metrics["metric_name"]))

# The notebook's older path: deploy the fitted estimator itself.
fit_predictor = linear.deploy(
    initial_instance_count=1,
    instance_type="ml.m4.xlarge",
    serializer=CSVSerializer(),
    deserializer=JSONDeserializer(),
)
out["fit_single"] = fit_predictor.predict(train_set[0][30:31])
fit_predictor.delete_endpoint()

# Beyond the notebook: register the fitted model in a new Model Package Group,
# twice (the second time the group exists). The SDK Searches for the group and
# for the training job behind the artifact; it lists groups only if Search fails.
fallbacks = []
list_groups = sess.sagemaker_client.list_model_package_groups
sess.sagemaker_client.list_model_package_groups = lambda **kw: (
    fallbacks.append(kw) or list_groups(**kw)
)
out["registered_arns"] = [
    linear.register(
        content_types=["text/csv"],
        response_types=["application/json"],
        inference_instances=["ml.m4.xlarge"],
        transform_instances=["ml.m4.xlarge"],
        model_package_group_name="mnist-ll-sdk-registered",
        approval_status="Approved",
    ).model_package_arn
    for _ in range(2)
]
out["register_listed_groups"] = len(fallbacks)
out["registered_listed"] = [
    p["ModelPackageArn"]
    for p in sess.sagemaker_client.list_model_packages(
        ModelPackageGroupName="mnist-ll-sdk-registered"
    )["ModelPackageSummaryList"]
]
details = TrainingDetails.from_model_s3_artifacts([linear.model_data], sagemaker_session=sess)
out["searched_training_arn"] = details.training_job_details.training_arn

hyperparameter_ranges = {
    "wd": ContinuousParameter(1e-7, 1, scaling_type="Auto"),
    "learning_rate": ContinuousParameter(1e-5, 1, scaling_type="Auto"),
    "mini_batch_size": IntegerParameter(100, 2000, scaling_type="Auto"),
}
tuner = HyperparameterTuner(
    linear,
    "validation:binary_f_beta",
    hyperparameter_ranges,
    max_jobs=MAX_JOBS,
    max_parallel_jobs=min(2, MAX_JOBS),
    objective_type="Maximize",
    random_seed=TUNER_SEED,
)
tuner.fit(
    inputs={"train": s3_train_data, "validation": s3_validation_data}, include_cls_metadata=False
)
tuner.wait()
out["best_training_job"] = tuner.best_training_job()
attached = HyperparameterTuner.attach(tuner.latest_tuning_job.name, sagemaker_session=sess)
out["attached_best"] = attached.best_training_job()
best_metrics = sagemaker.analytics.TrainingJobAnalytics(
    out["best_training_job"], metric_names=["validation:binary_f_beta"], sagemaker_session=sess
).dataframe()
out["best_metric_rows"] = len(best_metrics)
frame = tuner.analytics().dataframe()
out["analytics_rows"] = len(frame)

linear_predictor = tuner.deploy(initial_instance_count=1, instance_type="ml.m4.xlarge")
linear_predictor.serializer = CSVSerializer()
linear_predictor.deserializer = JSONDeserializer()
result = linear_predictor.predict(train_set[0][30:31], initial_args={"ContentType": "text/csv"})
out["single"] = result

predictions = []
for array in np.array_split(test_set[0], 100):
    result = linear_predictor.predict(array)
    predictions += [r["predicted_label"] for r in result["predictions"]]
predictions = np.array(predictions)
actual = (test_set[1] == 0).astype(int)
tp = int(((predictions == 1) & (actual == 1)).sum())
fp = int(((predictions == 1) & (actual == 0)).sum())
fn = int(((predictions == 0) & (actual == 1)).sum())
tn = int(((predictions == 0) & (actual == 0)).sum())
out["confusion"] = {"tp": tp, "fp": fp, "fn": fn, "tn": tn}
out["accuracy"] = (tp + tn) / len(actual)
out["f1"] = 2 * tp / max(1, 2 * tp + fp + fn)

ll_predictor = sagemaker.LinearLearnerPredictor(linear_predictor.endpoint_name, sess)
records = ll_predictor.predict(test_set[0][:5].astype("float32"))
out["recordio"] = [
    {
        "predicted_label": r.label["predicted_label"].float32_tensor.values[0],
        "score": r.label["score"].float32_tensor.values[0],
    }
    for r in records
]
out["recordio_matches_json"] = [int(r["predicted_label"]) for r in out["recordio"]] == [
    int(p) for p in predictions[:5]
]

# Beyond the notebook: the SDK's own LinearLearner with record_set(), which
# uploads recordIO shards and a ManifestFile channel; with the SDK's own
# hinge_loss and margin arguments (the SDK validates them client-side).
ll = sagemaker.LinearLearner(
    role=role,
    instance_count=1,
    instance_type="ml.c4.xlarge",
    predictor_type="binary_classifier",
    epochs=2,
    loss="hinge_loss",
    margin=1.5,
    sagemaker_session=sess,
)
records = ll.record_set(
    train_set[0][:500].astype("float32"),
    labels=(train_set[1][:500] == 0).astype("float32"),
)
ll.fit(records, logs="None")
out["record_set_channel"] = records.s3_data_type
record_set_job = ll.latest_training_job.describe()
out["record_set_job_status"] = record_set_job["TrainingJobStatus"]
out["record_set_failure"] = record_set_job.get("FailureReason")
out["record_set_loss"] = [record_set_job["HyperParameters"].get(k) for k in ("loss", "margin")]

linear_predictor.delete_model()
linear_predictor.delete_endpoint()
out["endpoint_deleted"] = False
for _ in range(50):
    try:
        sess.sagemaker_client.describe_endpoint(EndpointName=linear_predictor.endpoint_name)
    except sess.sagemaker_client.exceptions.ClientError:
        out["endpoint_deleted"] = True
        break
    time.sleep(0.2)
try:
    sess.sagemaker_client.describe_model(ModelName=linear_predictor._get_model_names()[0])
    out["model_deleted"] = False
except Exception:
    out["model_deleted"] = True

# The fit's log stream, as the SDK's log reader finds it.
logs = boto3.client("logs")
streams = logs.describe_log_streams(
    logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=out["fit_job"] + "/"
)["logStreams"]
out["log_streams"] = [s["logStreamName"] for s in streams]
out["log_lines"] = [
    e["message"]
    for s in streams
    for e in logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=s["logStreamName"]
    )["events"]
]
print("\nFLOW-RESULT " + json.dumps(out, default=str))
sys.stdout.flush()
