"""The pipeline with a static hyperparameter from ``cdk.json``: Linear
Learner's ``loss=hinge_loss`` trains SVMs through tuning, Batch Transform and
the evaluation, whose scores are then decision values."""

from __future__ import annotations

from pathlib import Path

import boto3

from training.model import LinearModel

HINGE = {"extra_static_hyperparameters": {"loss": "hinge_loss", "margin": "1.0"}}


def test_a_hinge_loss_pipeline_tunes_serves_and_evaluates_svms(
    small_dataset: Path, tmp_path: Path
) -> None:
    from local.account.backend import LinearLearnerBackend
    from local.account.runner import LocalPipeline

    with LocalPipeline(
        work_dir=tmp_path,
        backend=LinearLearnerBackend(work_dir=tmp_path / "backend"),
        poll_seconds=1,
        printer=lambda line: None,
        config_overrides=HINGE,
    ) as pipeline:
        payload = {
            "source": str(small_dataset),
            "max_jobs": 2,
            "max_parallel_jobs": 2,
            "endpoint": {"mode": "none"},
        }
        result = pipeline.execute(payload, "e2e-hinge", 300)
        assert result.status == "SUCCEEDED", (result.error, result.cause)
        output = result.output or {}
        sm = boto3.client("sagemaker")
        tuning = sm.describe_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=output["tuning_job"]
        )
        static = tuning["TrainingJobDefinition"]["StaticHyperParameters"]
        assert (static["loss"], static["margin"]) == ("hinge_loss", "1.0")
        artifact = output["best_training_job"]["model_artifacts"]
        bucket, _, key = artifact.removeprefix("s3://").partition("/")
        blob = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        model = LinearModel.from_bytes(blob)
        assert model.loss == "hinge_loss"
        assert output["metrics"]["accuracy"] > 0.9
        single = output["single_prediction"]
        # an SVM's decision value against the calibrated threshold, not a probability
        assert (single["score"] >= model.threshold) == (single["predicted_label"] == 1)
        assert single["score"] < 0 or single["score"] > 1
