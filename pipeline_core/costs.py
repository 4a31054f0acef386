"""What a run costs: the ``endpoint`` and ``cost`` blocks of every report.

Prices come from ``pipeline_core/data/prices.json``, a hand-kept copy of the
SageMaker pricing page with its source and date; it is never fetched live.
Billable training seconds come from DescribeTrainingJob
``BillableTimeInSeconds`` of every training job of the tuning job (Managed
Spot bills less than ``TrainingTimeInSeconds``; the difference is the saving).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from pipeline_core.awserrors import named_error

PRICES_PATH = Path(__file__).resolve().parent / "data" / "prices.json"


@cache
def price_table() -> dict[str, Any]:
    table: dict[str, Any] = json.loads(PRICES_PATH.read_text(encoding="utf-8"))
    return table


def _price(section: str, instance_type: str) -> float | None:
    value = price_table().get(section, {}).get(instance_type)
    return None if value is None else float(value)


def training_billing(sm: Any, tuning_job_name: str) -> dict[str, Any]:
    """Billable and trained seconds over every training job of the tuning job."""
    jobs: list[str] = []
    try:
        pages = sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
            HyperParameterTuningJobName=tuning_job_name
        )
        for page in pages:
            jobs.extend(str(s["TrainingJobName"]) for s in page.get("TrainingJobSummaries", []))
    except ClientError as e:
        raise named_error(e, "ListTrainingJobsForHyperParameterTuningJob") from e
    billable = trained = 0
    for name in jobs:
        try:
            described = sm.describe_training_job(TrainingJobName=name)
        except ClientError as e:
            raise named_error(e, "DescribeTrainingJob") from e
        billable += int(described.get("BillableTimeInSeconds") or 0)
        trained += int(described.get("TrainingTimeInSeconds") or 0)
    savings = round(100.0 * (1.0 - billable / trained), 1) if trained else None
    return {
        "training_jobs": len(jobs),
        "billable_seconds": billable,
        "training_seconds": trained,
        "spot_savings_percent": savings,
    }


def endpoint_block(
    mode: str, endpoint_name: str | None, ttl: dict[str, Any] | None
) -> dict[str, Any]:
    """``{"mode", "name", "deletes_at"}``: name null in mode none; deletes_at
    null when the endpoint is kept forever (or there is none)."""
    return {
        "mode": mode,
        "name": endpoint_name if mode != "none" else None,
        "deletes_at": (ttl or {}).get("deletes_at") if mode != "none" else None,
    }


def cost_block(
    *,
    mode: str,
    training_instance_type: str,
    training_instance_count: int,
    billing: dict[str, Any] | None,
    spot: bool,
    transform_instance_type: str,
    transform_seconds: float,
    endpoint_instance_type: str,
    endpoint_instance_count: int,
    ttl_hours: int,
) -> dict[str, Any]:
    """The run's cost estimate, with the price table it used."""
    table = price_table()
    billing = billing or {}
    billable = int(billing.get("billable_seconds") or 0)
    train_rate = _price("training_per_hour", training_instance_type)
    training_usd = (train_rate or 0.0) * training_instance_count * billable / 3600.0
    transform_rate = (
        _price("transform_per_hour", transform_instance_type) if mode == "none" else 0.0
    )
    transform_usd = (transform_rate or 0.0) * transform_seconds / 3600.0
    if mode == "realtime":
        hourly = _price("hosting_per_hour", endpoint_instance_type)
        endpoint_per_hour = None if hourly is None else hourly * endpoint_instance_count
    else:
        # Serverless bills per request (GB-seconds of inference), idle is free; none: nothing.
        endpoint_per_hour = 0.0
    endpoint_usd = (endpoint_per_hour or 0.0) * ttl_hours
    unknown = [
        t
        for t, rate in (
            (training_instance_type, train_rate),
            (transform_instance_type, transform_rate),
            (endpoint_instance_type, endpoint_per_hour),
        )
        if rate is None
    ]
    return {
        "training_billable_seconds": billable,
        "training_seconds": int(billing.get("training_seconds") or 0),
        "training_jobs": int(billing.get("training_jobs") or 0),
        "spot": spot,
        "spot_savings_percent": billing.get("spot_savings_percent") if spot else None,
        "transform_seconds": round(float(transform_seconds), 3),
        "endpoint_usd_per_hour": endpoint_per_hour,
        # The endpoint's hours up to its TTL are included; with ttl 0 (kept
        # forever) only endpoint_usd_per_hour tells what it keeps costing.
        "endpoint_hours_included": ttl_hours if mode == "realtime" else 0,
        "usd_estimate": round(training_usd + transform_usd + endpoint_usd, 4),
        "unpriced_instance_types": sorted(set(unknown)),
        "prices": {
            "source": table["source"],
            "date": table["date"],
            "region": table["region"],
            "currency": table["currency"],
            "note": table["note"],
            "training_per_hour": train_rate,
            "transform_per_hour": transform_rate if mode == "none" else None,
            "endpoint_per_hour": endpoint_per_hour,
            "serverless_per_gb_second": table["serverless_per_gb_second"],
        },
    }


#: The local run bills nothing: the figure is what the same run would cost on AWS.
COST_LABEL = "cost (cloud estimate, not charged locally)"


def cost_line(cost: dict[str, Any], endpoint: dict[str, Any]) -> str:
    """One line for the terminal: what ran, and which endpoint hours the estimate holds."""
    training = cost["training_billable_seconds"]
    head = f"{COST_LABEL}: ~${cost['usd_estimate']:.4f} (training {training} billable s"
    prices = f"prices of {cost['prices']['date']}"
    if endpoint.get("mode") == "none":
        # What ran instead of an endpoint: one Batch Transform job over the test split.
        return (
            f"{head}, transform job {float(cost['transform_seconds']):.1f} s); no endpoint: "
            f"Batch Transform scored the test split; {prices}"
        )
    per_hour = cost.get("endpoint_usd_per_hour")
    deletes = endpoint.get("deletes_at") or ("never" if endpoint.get("name") else "-")
    hours = cost.get("endpoint_hours_included") or 0
    if endpoint.get("mode") != "realtime":
        held = ""
    elif per_hour is None:
        held = ", endpoint unpriced: its instance type is not in the price table"
    elif hours:
        held = f", endpoint {hours} h up to its TTL"
    else:
        held = ", endpoint not included: it bills until deleted"
    return (
        f"{head}{held}); endpoint {endpoint.get('mode')} {endpoint.get('name')} "
        f"${(per_hour or 0.0):.3f}/h, deleted at {deletes}; {prices}"
    )
