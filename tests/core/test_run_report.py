"""Evaluate's report files: predictions.csv and report.html beside report.json,
their numbers held to each other and to scikit-learn; the two SageMaker calls
the report makes (trials, registered version metadata) through the Stubber."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws
from pipeline_testlib import BUCKET, REGION, make_run, sagemaker_client, stubbed

from pipeline_core.config import DEFAULTS
from pipeline_core.errors import ThrottlingError
from pipeline_core.evaluate import evaluate_arrays, write_report
from pipeline_core.report_html import build_html
from pipeline_core.run_report import (
    lineage,
    list_trials,
    registry_metadata,
    tuning_trials,
    update_registered_version,
)
from pipeline_core.svg import Axis

RUN = make_run("exec-1")
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mnist-ll-models/3"
TUNING = {
    "name": "mnist-ll-exec-1-abcd1234",
    "best": {
        "training_job_name": "mnist-ll-exec-1-abcd1234-002-aaaa",
        "objective_metric": "validation:binary_f_beta",
        "objective_value": 0.91,
        "hyperparameters": {"wd": "0.001", "learning_rate": "0.1", "mini_batch_size": "300"},
        "model_artifacts": "s3://b/runs/exec-1/tuning/x/model.tar.gz",
    },
}


class Endpoint:
    """Scores two-decimal values (many ties), predicts 1 at ``score >= 0.47``."""

    def __call__(self, body: bytes, _content_type: str) -> bytes:
        rows = np.array([[float(v) for v in line.split(b",")] for line in body.split(b"\n")])
        scores = np.round(rows[:, 0] * 0.6 + rows[:, 1] * 0.4, 2)
        preds = [{"score": float(s), "predicted_label": int(s >= 0.47)} for s in scores]
        return json.dumps({"predictions": preds}).encode()


class Page(HTMLParser):
    """The numbers report.html carries, and every tag it opens."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: dict[str, float] = {}
        self.cells: dict[str, int] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.chosen_rows = 0
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if a.get("data-metric"):
            self.metrics[str(a["data-metric"])] = float(str(a["data-value"]))
        self._cell = a.get("data-cell")
        if tag == "tr" and a.get("class") == "chosen":
            self.chosen_rows += 1

    def handle_data(self, data: str) -> None:
        if self._cell:
            self.cells[self._cell] = int(data)
            self._cell = None


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client


def _trials() -> dict[str, Any]:
    trials = [
        {
            "name": f"mnist-ll-exec-1-abcd1234-00{i}-aaaa",
            "status": "Completed",
            "objective": 0.8 + i / 100,
            "hyperparameters": {"wd": f"{10.0**-i}", "learning_rate": "0.1"},
        }
        for i in range(1, 5)
    ]
    return {
        "tuning_job": TUNING["name"],
        "objective_metric": "validation:binary_f_beta",
        "objective_type": "Maximize",
        "best_training_job": trials[-1]["name"],
        "ranges": [
            {"name": "wd", "scaling": "Auto", "min_value": 1e-7, "max_value": 1.0},
            {"name": "learning_rate", "scaling": "Linear", "min_value": 0.01, "max_value": 0.5},
        ],
        "trials": trials,
    }


def _write(s3: Any, n: int = 2000) -> tuple[dict[str, Any], str, str, dict[str, Any]]:
    rng = np.random.default_rng(3)
    x = rng.random((n, 4), dtype=np.float32)
    y = (x[:, 0] + 0.3 * rng.random(n) > 0.75).astype(np.float32)
    report = evaluate_arrays(x, y, Endpoint(), chunks=7)
    extra = {
        "cost": {"usd_estimate": 0.12, "prices": {"source": "https://example.invalid/p"}},
        "tuning_trials": _trials(),
        "lineage": lineage(
            RUN,
            DEFAULTS,
            data={"source_sha256": "ab" * 32, "manifest_uri": RUN.s3_uri("data/manifest.json")},
            deployed={"endpoint_name": "ep", "model_name": "m"},
            tuning=TUNING,
            registry={"model_package_arn": PACKAGE, "source": "registered"},
            execution_arn="arn:aws:states:us-east-1:123456789012:execution:sm:exec-1",
        ),
    }
    evaluation = write_report(RUN, s3, {"execution_name": "exec-1", **report}, extra)

    def get(name: str) -> str:
        body = s3.get_object(Bucket=BUCKET, Key=f"runs/exec-1/{name}")["Body"].read()
        return str(body.decode())

    return json.loads(get("report.json")), get("predictions.csv"), get("report.html"), evaluation


def test_predictions_csv_matches_scikit_learn_auc_and_average_precision(s3: Any) -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score

    report, predictions, _html, evaluation = _write(s3)
    rows = list(csv.DictReader(io.StringIO(predictions)))
    assert list(rows[0]) == ["label", "score", "predicted_label"] and len(rows) == 2000
    y = [int(r["label"]) for r in rows]
    s = [float(r["score"]) for r in rows]
    assert len(set(s)) < 200  # ties
    assert report["metrics"]["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-6)
    assert report["metrics"]["pr_auc"] == pytest.approx(average_precision_score(y, s), abs=1e-6)
    assert evaluation["metrics"] == report["metrics"]  # what the state and the dashboard get
    assert evaluation["report_html_uri"] == f"s3://{BUCKET}/runs/exec-1/report.html"
    assert "lineage" not in evaluation and "tuning_trials" not in evaluation  # state stays small
    # The model's threshold, read off its predictions, reproduces the confusion matrix.
    assert report["threshold"] == 0.47
    predicted = [int(r["predicted_label"]) for r in rows]
    tp = sum(1 for a, p in zip(y, predicted, strict=True) if a == 1 and p == 1)
    assert tp == report["confusion_matrix"]["tp"]
    (chosen,) = [r for r in report["threshold_sweep"] if r["chosen"]]
    assert {k: chosen[k] for k in ("tp", "fp", "fn")} == {
        k: report["confusion_matrix"][k] for k in ("tp", "fp", "fn")
    }


def test_report_html_shows_the_numbers_of_report_json_and_references_nothing(s3: Any) -> None:
    report, _predictions, html, _evaluation = _write(s3)
    page = Page()
    page.feed(html)
    m = report["metrics"]
    for key in ("auc", "pr_auc", "accuracy", "f1", "precision", "recall"):
        assert page.metrics[key] == m[key], key
    assert page.metrics["threshold"] == report["threshold"]
    assert page.metrics["rows"] == report["rows"] == 2000
    assert page.cells == report["confusion_matrix"]
    assert page.chosen_rows == 2  # the sweep's model row and the winning trial
    lowered = html.lower()
    assert "http" not in lowered and "<script" not in lowered and "<link" not in lowered
    assert "@import" not in lowered and "url(" not in lowered
    assert not [a for _t, a in page.tags if a.get("src") or a.get("href")]
    assert sum(1 for t, _a in page.tags if t == "svg") == 5  # ROC, PR, calibration, 2 trials
    assert "(log)" in html  # wd: Auto over seven decades
    assert "Cost (cloud estimate)" in html and "example.invalid/p" in html
    assert report["lineage"]["dataset"]["sha256"] == "ab" * 32
    assert report["lineage"]["binary_classifier_model_selection_criteria"].startswith("accuracy")
    assert len(html) < 200_000


def test_report_html_escapes_what_it_is_given() -> None:
    from pipeline_core.scoring import Scored

    scored = Scored.of([0, 1], [0.2, 0.8], [0, 1])
    html = build_html(
        {"execution_name": "<script>x</script>", "lineage": {"a": "<b>"}, "metrics": {}}, scored
    )
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html


def test_log_axis_refuses_a_non_positive_range() -> None:
    with pytest.raises(ValueError, match="positive"):
        Axis("wd", 0.0, 1.0, log=True)
    assert Axis("wd", 1e-7, 1.0, log=True).ticks()[0] == pytest.approx(1e-7)


# -- the SageMaker calls -------------------------------------------------------------------


def test_list_trials_pages_through_the_tuning_jobs_training_jobs() -> None:
    sm = sagemaker_client()
    name = TUNING["name"]

    def summary(i: int, **extra: Any) -> dict[str, Any]:
        return {
            "TrainingJobName": f"{name}-00{i}-aaaa",
            "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}-{i}",
            "CreationTime": "2026-12-01T00:00:00Z",
            "TrainingJobStatus": "Completed",
            "TunedHyperParameters": {"wd": f"0.00{i}"},
            **extra,
        }

    metric = {"MetricName": "validation:binary_f_beta", "Value": 0.9}
    with stubbed(sm) as stub:
        stub.add_response(
            "list_training_jobs_for_hyper_parameter_tuning_job",
            {
                "TrainingJobSummaries": [
                    summary(2, FinalHyperParameterTuningJobObjectiveMetric=metric)
                ],
                "NextToken": "t",
            },
            expected_params={"HyperParameterTuningJobName": name},
        )
        stub.add_response(
            "list_training_jobs_for_hyper_parameter_tuning_job",
            {"TrainingJobSummaries": [summary(1, TrainingJobStatus="Failed")]},
            expected_params={"HyperParameterTuningJobName": name, "NextToken": "t"},
        )
        trials = list_trials(sm, name)
    assert [t["name"] for t in trials] == [f"{name}-001-aaaa", f"{name}-002-aaaa"]
    assert trials[0]["objective"] is None and trials[0]["status"] == "Failed"
    assert trials[1] == {
        "name": f"{name}-002-aaaa",
        "status": "Completed",
        "objective": 0.9,
        "hyperparameters": {"wd": "0.002"},
    }


def test_list_trials_still_throttled_is_a_named_error_the_state_machine_retries() -> None:
    sm = sagemaker_client()
    with stubbed(sm) as stub:
        stub.add_client_error(
            "list_training_jobs_for_hyper_parameter_tuning_job",
            service_error_code="ThrottlingException",
            service_message="Rate exceeded",
        )
        with pytest.raises(ThrottlingError, match="ListTrainingJobsForHyperParameterTuningJob"):
            list_trials(sm, "j")


def test_a_version_deployed_by_arn_reports_no_trials_and_makes_no_call() -> None:
    sm = sagemaker_client()
    registry = {"model_package_arn": PACKAGE, "source": "model_package_arn"}
    with stubbed(sm):  # no call allowed
        block = tuning_trials(RUN, TUNING, registry, sm)
        assert update_registered_version(sm, registry, {"test_auc": "0.9"}, log=print) == "skipped"
    assert block["trials"] == [] and PACKAGE in block["note"]


def test_evaluate_adds_auc_and_f1_to_the_version_this_run_registered() -> None:
    sm = sagemaker_client()
    meta = registry_metadata({"metrics": {"auc": 0.99123456, "pr_auc": 0.9, "f1": 0.95}})
    assert meta == {"test_auc": "0.991235", "test_pr_auc": "0.900000", "test_f1": "0.950000"}
    registry = {"model_package_arn": PACKAGE, "source": "registered"}
    with stubbed(sm) as stub:
        stub.add_response(
            "update_model_package",
            {"ModelPackageArn": PACKAGE},
            expected_params={"ModelPackageArn": PACKAGE, "CustomerMetadataProperties": meta},
        )
        assert update_registered_version(sm, registry, meta, log=print) == "updated"
    logged: list[str] = []
    with stubbed(sm) as stub:  # best effort: the evaluation stands without it
        stub.add_client_error(
            "update_model_package",
            service_error_code="AccessDeniedException",
            service_message="not authorized",
        )
        out = update_registered_version(sm, registry, meta, log=logged.append)
    assert out == "failed: AccessDeniedException" and PACKAGE in logged[0]
