"""What Evaluate writes beside ``report.json``, and what it adds to it.

``predictions.csv`` (every test record's label, score and predicted label,
in test order) and ``report.html`` (:mod:`pipeline_core.report_html`);
``report.json`` gains ``metrics.auc``, ``metrics.pr_auc``, ``threshold``,
``threshold_sweep``, ``calibration``, ``tuning_trials`` and ``lineage``.
The registered version this run made gets its AUC and F1 as customer
metadata (UpdateModelPackage). docs/REPORT.md defines every number.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from pipeline_core.awserrors import named_error, named_errors
from pipeline_core.config import PipelineConfig
from pipeline_core.inputs import RunSpec
from pipeline_core.report_html import build_html
from pipeline_core.scoring import (
    Scored,
    average_precision,
    calibration,
    implied_threshold,
    roc_auc,
    sweep,
)
from pipeline_core.tuning import static_hyperparameters

#: Linear Learner's default ``binary_classifier_model_selection_criteria``.
DEFAULT_CRITERION = "accuracy"
CRITERION = "binary_classifier_model_selection_criteria"
#: Customer metadata keys UpdateModelPackage adds after Evaluate.
META_AUC = "test_auc"
META_PR_AUC = "test_pr_auc"
META_F1 = "test_f1"
_ROOT = Path(__file__).resolve().parents[1]


def enrich(report: dict[str, Any], scored: Scored) -> dict[str, Any]:
    """``report`` plus the threshold-free metrics, the model's threshold, the
    sweep and the calibration table."""
    threshold = implied_threshold(scored)
    metrics = {
        **report.get("metrics", {}),
        "auc": roc_auc(scored.labels, scored.scores),
        "pr_auc": average_precision(scored.labels, scored.scores),
    }
    return {
        **report,
        "metrics": metrics,
        "threshold": threshold["value"],
        "threshold_basis": threshold,
        "threshold_sweep": sweep(scored, threshold["value"]),
        "calibration": calibration(scored),
    }


def write_artifacts(
    run: RunSpec, s3: Any, report: dict[str, Any], scored: Scored
) -> dict[str, str]:
    """Put ``predictions.csv`` and ``report.html``; returns their URIs."""
    out: dict[str, str] = {}
    for name, body, content_type in (
        ("predictions.csv", scored.csv(), "text/csv"),
        ("report.html", build_html(report, scored).encode("utf-8"), "text/html; charset=utf-8"),
    ):
        key = f"{run.prefix}{name}"
        with named_errors(f"S3 PutObject ({name})"):
            s3.put_object(Bucket=run.bucket, Key=key, Body=body, ContentType=content_type)
        out[name] = f"s3://{run.bucket}/{key}"
    return out


def list_trials(sm: Any, tuning_job_name: str) -> list[dict[str, Any]]:
    """Every training job of the tuning job: name, status, final objective
    and tuned hyperparameters (ListTrainingJobsForHyperParameterTuningJob)."""
    trials: list[dict[str, Any]] = []
    try:
        pages = sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
            HyperParameterTuningJobName=tuning_job_name
        )
        for page in pages:
            for s in page.get("TrainingJobSummaries", []):
                final = s.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
                trials.append(
                    {
                        "name": str(s["TrainingJobName"]),
                        "status": str(s.get("TrainingJobStatus")),
                        "objective": float(final["Value"]) if "Value" in final else None,
                        "hyperparameters": {
                            str(k): str(v) for k, v in (s.get("TunedHyperParameters") or {}).items()
                        },
                    }
                )
    except ClientError as e:
        raise named_error(e, "ListTrainingJobsForHyperParameterTuningJob") from e
    return sorted(trials, key=lambda t: t["name"])


def tuning_trials(
    run: RunSpec, tuning: dict[str, Any], registry: dict[str, Any], sm: Any
) -> dict[str, Any]:
    """``report.json``'s ``tuning_trials``. A registered version deployed by
    ARN was tuned by another run: its trials are in that run's report."""
    best = tuning.get("best") or {}
    block: dict[str, Any] = {
        "tuning_job": tuning.get("name"),
        "objective_metric": best.get("objective_metric") or run.objective_metric,
        "objective_type": run.objective_type,
        "best_training_job": best.get("training_job_name"),
        "ranges": [
            {
                "name": r.name,
                "scaling": r.scaling,
                "min_value": r.min_value,
                "max_value": r.max_value,
            }
            for r in run.ranges
        ],
        "trials": [],
    }
    if registry.get("source") == "model_package_arn":
        block["note"] = (
            f"model package {registry.get('model_package_arn')} was tuned by tuning job "
            f"{tuning.get('name')}: the report of the run that registered it has the trials"
        )
        return block
    if not tuning.get("name"):
        block["note"] = "no tuning job in this execution's state"
        return block
    block["trials"] = list_trials(sm, str(tuning["name"]))
    return block


def source_commit(root: Path = _ROOT) -> str | None:
    """``git rev-parse HEAD`` of the source tree when it is a git checkout
    (a local run); None otherwise (a Lambda's asset has no ``.git``)."""
    if not (root / ".git").exists():
        return None
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = proc.stdout.strip()
    return commit if proc.returncode == 0 and commit else None


def lineage(
    run: RunSpec,
    config: PipelineConfig,
    *,
    data: dict[str, Any],
    deployed: dict[str, Any],
    tuning: dict[str, Any],
    registry: dict[str, Any],
    execution_arn: str | None,
) -> dict[str, Any]:
    """Where every artifact of the run came from. The threshold itself is
    read off the predictions (:func:`pipeline_core.scoring.implied_threshold`)."""
    best = tuning.get("best") or {}
    hyperparameters = {
        **static_hyperparameters(run, config),
        **(best.get("hyperparameters") or {}),
    }
    criterion = hyperparameters.get(CRITERION)
    commit = source_commit()
    return {
        "dataset": {
            "source": data.get("source") or run.source,
            "sha256": data.get("source_sha256"),
            "manifest": data.get("manifest_uri"),
            "registered_by": data.get("registered_by"),
        },
        "tuning_job": tuning.get("name"),
        "best_training_job": {
            "name": best.get("training_job_name"),
            "objective": {
                "metric": best.get("objective_metric"),
                "value": best.get("objective_value"),
            },
            "model_artifacts": best.get("model_artifacts"),
            "hyperparameters": hyperparameters,
        },
        CRITERION: criterion or f"{DEFAULT_CRITERION} (Linear Learner's default)",
        "threshold_rule": (
            f"the training job picked the decision threshold that gives the best "
            f"{criterion or DEFAULT_CRITERION} on the validation channel "
            "(loss_function keeps the neutral one); report.json's threshold is that "
            "threshold as read off the test predictions"
        ),
        "model_package": registry.get("model_package_arn"),
        "model_package_source": registry.get("source"),
        "model": deployed.get("model_name"),
        "endpoint": deployed.get("endpoint_name"),
        "endpoint_config": deployed.get("endpoint_config_name"),
        "transform_job": deployed.get("transform_job_name"),
        "execution_arn": execution_arn,
        "git_commit": commit
        or "not recorded (only a local run from a git checkout records its commit)",
    }


def registry_metadata(report: dict[str, Any]) -> dict[str, str]:
    """The customer metadata Evaluate adds to the version this run registered
    (values as CustomerMetadataValue's pattern allows: digits and dots; the
    dataset's sha256 was recorded at registration)."""
    metrics = report.get("metrics") or {}
    meta = {
        META_AUC: metrics.get("auc"),
        META_PR_AUC: metrics.get("pr_auc"),
        META_F1: metrics.get("f1"),
    }
    return {k: f"{float(v):.6f}" for k, v in meta.items() if v is not None}


def update_registered_version(
    sm: Any,
    registry: dict[str, Any],
    metadata: dict[str, str],
    *,
    log: Callable[[str], object],
) -> str:
    """UpdateModelPackage with ``metadata`` on the version this run registered
    (a version deployed by ARN keeps the metadata of the run that made it).
    Best effort: the evaluation stands without it. Returns what happened."""
    arn = registry.get("model_package_arn")
    if not arn or registry.get("source") != "registered" or not metadata:
        return "skipped"
    try:
        sm.update_model_package(ModelPackageArn=str(arn), CustomerMetadataProperties=metadata)
    except ClientError as e:
        log(f"UpdateModelPackage {arn}: {e}")
        return f"failed: {e.response.get('Error', {}).get('Code', 'error')}"
    return "updated"
