from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest
from conftest import BASE_HP

from training.errors import TuningRequestError
from training.model import LinearModel
from training.search import parse_ranges
from training.tuner import TuningJob

STATIC = {**{k: v for k, v in BASE_HP.items() if k != "mini_batch_size"}, "epochs": "2"}


def request(
    name: str = "tune-test",
    *,
    jobs: int = 4,
    parallel: int = 2,
    strategy: str = "Random",
    metric: str = "validation:binary_f_beta",
    kind: str = "Maximize",
    ranges: dict[str, Any] | None = None,
    static: dict[str, str] | None = None,
    seed: int | None = 7,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "Strategy": strategy,
        "HyperParameterTuningJobObjective": {"Type": kind, "MetricName": metric},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": parallel},
        "ParameterRanges": ranges
        or {
            "ContinuousParameterRanges": [
                {
                    "Name": "learning_rate",
                    "MinValue": "1e-4",
                    "MaxValue": "0.1",
                    "ScalingType": "Auto",
                }
            ],
            "IntegerParameterRanges": [
                {
                    "Name": "mini_batch_size",
                    "MinValue": "50",
                    "MaxValue": "500",
                    "ScalingType": "Linear",
                }
            ],
        },
    }
    if seed is not None:
        config["RandomSeed"] = seed
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": config,
        "TrainingJobDefinition": {
            "StaticHyperParameters": static or STATIC,
            "InputDataConfig": [{"ChannelName": "train"}, {"ChannelName": "validation"}],
            "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
    }


def run(req, channels, tmp_path):
    events: list[dict[str, Any]] = []
    job = TuningJob(req, channels, tmp_path, on_event=events.append)
    described = job.run()
    return job, described, events


@pytest.fixture(scope="module")
def parallel_run(channels, tmp_path_factory):
    return run(request(), channels, tmp_path_factory.mktemp("tune"))


def test_runs_exactly_max_jobs_with_sagemaker_names(parallel_run, tmp_path_factory):
    job, described, _ = parallel_run
    summaries = job.training_jobs()
    assert len(summaries) == 4
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert described["TrainingJobStatusCounters"]["Completed"] == 4
    for i, s in enumerate(summaries, start=1):
        assert re.fullmatch(rf"tune-test-{i:03d}-[0-9a-f]{{8}}", s["TrainingJobName"])
        assert s["TrainingJobStatus"] == "Completed"
        assert job.artifact(s["TrainingJobName"]).is_file()
        LinearModel.load(job.artifact(s["TrainingJobName"]))
    assert len({s["TrainingJobName"] for s in summaries}) == 4


def test_names_are_deterministic(parallel_run, channels, tmp_path):
    job, _, _ = parallel_run
    again = TuningJob(request(jobs=1, parallel=1), channels, tmp_path)
    again.run()
    assert again.training_jobs()[0]["TrainingJobName"] == job.training_jobs()[0]["TrainingJobName"]


def test_jobs_run_in_parallel_processes_but_never_more_than_the_limit(parallel_run):
    job, _, events = parallel_run
    pids = [e["pid"] for e in events if e["type"] == "TrainingJobStarted"]
    assert len(set(pids)) == 4
    windows = [(s["TrainingStartTime"], s["TrainingEndTime"]) for s in job.training_jobs()]
    points = sorted([(start, 1) for start, _ in windows] + [(end, -1) for _, end in windows])
    running = peak = 0
    for _, step in points:
        running += step
        peak = max(peak, running)
    assert peak == 2


def test_tuned_values_respect_ranges_and_num_models_is_forced_to_one(parallel_run):
    job, _, _ = parallel_run
    for s in job.training_jobs():
        tuned = s["TunedHyperParameters"]
        assert 1e-4 <= float(tuned["learning_rate"]) <= 0.1
        assert 50 <= int(tuned["mini_batch_size"]) <= 500
        full = job.training_job(s["TrainingJobName"])
        assert full["HyperParameters"]["num_models"] == "1"
        assert full["HyperParameters"]["_tuning_objective_metric"] == "validation:binary_f_beta"
        assert full["HyperParameters"]["epochs"] == "2"
        names = {m["MetricName"] for m in full["FinalMetricDataList"]}
        assert "validation:roc_auc_score" in names


def test_best_job_maximizes_the_objective(parallel_run):
    job, described, events = parallel_run
    values = {
        s["TrainingJobName"]: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        for s in job.training_jobs()
    }
    best = described["BestTrainingJob"]
    assert best["TrainingJobName"] == max(values, key=lambda k: values[k])
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["MetricName"] == (
        "validation:binary_f_beta"
    )
    assert any(e["type"] == "metric" for e in events)
    assert events[-1]["type"] == "TuningJobCompleted"


def test_minimize_picks_the_lowest_loss(channels, tmp_path):
    job, described, _ = run(
        request(
            "tune-min",
            jobs=3,
            metric="validation:objective_loss",
            kind="Minimize",
            strategy="Bayesian",
        ),
        channels,
        tmp_path,
    )
    values = {
        s["TrainingJobName"]: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        for s in job.training_jobs()
    }
    assert len(set(values.values())) > 1
    assert described["BestTrainingJob"]["TrainingJobName"] == min(values, key=lambda k: values[k])


def test_a_failed_training_job_is_recorded_without_killing_the_tuning_job(channels, tmp_path):
    ranges = {"CategoricalParameterRanges": [{"Name": "epochs", "Values": ["2", "bogus"]}]}
    job, described, _ = run(
        request("tune-fail", jobs=4, ranges=ranges, seed=7, static=BASE_HP), channels, tmp_path
    )
    by_status: dict[str, list[dict[str, Any]]] = {}
    for s in job.training_jobs():
        by_status.setdefault(s["TrainingJobStatus"], []).append(s)
    assert by_status.get("Completed") and by_status.get("Failed"), by_status
    for s in by_status["Failed"]:
        assert s["TunedHyperParameters"]["epochs"] == "bogus"
        assert "HyperparameterError" in s["FailureReason"] and "'epochs'" in s["FailureReason"]
        assert "FinalHyperParameterTuningJobObjectiveMetric" not in s
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert described["TrainingJobStatusCounters"]["NonRetryableError"] == len(by_status["Failed"])
    assert described["BestTrainingJob"]["TrainingJobStatus"] == "Completed"


def test_when_every_job_fails_the_tuning_job_fails(channels, tmp_path):
    ranges = {"ContinuousParameterRanges": [{"Name": "wd", "MinValue": "-2", "MaxValue": "-1"}]}
    _, described, events = run(request("tune-allfail", jobs=2, ranges=ranges), channels, tmp_path)
    assert described["HyperParameterTuningJobStatus"] == "Failed"
    assert (
        "All training jobs failed" in described["FailureReason"]
        and "'wd'" in described["FailureReason"]
    )
    assert "BestTrainingJob" not in described
    assert events[-1]["type"] == "TuningJobFailed"


def test_stop_terminates_running_jobs(channels, tmp_path):
    static = {**STATIC, "epochs": "100000", "early_stopping_patience": "100000"}
    job = TuningJob(request("tune-stop", jobs=3, parallel=1, static=static), channels, tmp_path)
    thread = threading.Thread(target=job.run)
    thread.start()
    deadline = time.monotonic() + 30
    while not job.training_jobs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.describe()["HyperParameterTuningJobStatus"] == "InProgress"
    job.stop()
    thread.join(30)
    described = job.describe()
    assert described["HyperParameterTuningJobStatus"] == "Stopped"
    assert [s["TrainingJobStatus"] for s in job.training_jobs()] == ["Stopped"]


def test_parse_ranges_scaling_rules():
    specs = parse_ranges(
        {
            "ContinuousParameterRanges": [
                {"Name": "wd", "MinValue": "1e-7", "MaxValue": "1", "ScalingType": "Auto"},
                {"Name": "l1", "MinValue": "0.1", "MaxValue": "0.5", "ScalingType": "Auto"},
                {"Name": "learning_rate", "MinValue": "0", "MaxValue": "1", "ScalingType": "Auto"},
                {
                    "Name": "beta_1",
                    "MinValue": "0.5",
                    "MaxValue": "0.999",
                    "ScalingType": "ReverseLogarithmic",
                },
            ],
            "IntegerParameterRanges": [
                {
                    "Name": "mini_batch_size",
                    "MinValue": "100",
                    "MaxValue": "2000",
                    "ScalingType": "Logarithmic",
                }
            ],
        }
    )
    by_name = {s.name: s for s in specs}
    assert by_name["wd"].log and not by_name["l1"].log and not by_name["learning_rate"].log
    assert by_name["beta_1"].reverse and by_name["mini_batch_size"].log
    assert by_name["beta_1"].to_string(1 - 0.9) == repr(0.9)
    assert by_name["mini_batch_size"].to_string(150) == "150"


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        (
            {
                "ContinuousParameterRanges": [
                    {"Name": "wd", "MinValue": "0", "MaxValue": "1", "ScalingType": "Logarithmic"}
                ]
            },
            "MinValue > 0",
        ),
        (
            {
                "ContinuousParameterRanges": [
                    {
                        "Name": "wd",
                        "MinValue": "0.5",
                        "MaxValue": "1",
                        "ScalingType": "ReverseLogarithmic",
                    }
                ]
            },
            "MaxValue < 1",
        ),
        (
            {"IntegerParameterRanges": [{"Name": "epochs", "MinValue": "1", "MaxValue": "2.5"}]},
            "integer",
        ),
        (
            {"ContinuousParameterRanges": [{"Name": "wd", "MinValue": 0.1, "MaxValue": "1"}]},
            "string",
        ),
        (
            {"ContinuousParameterRanges": [{"Name": "wd", "MinValue": "2", "MaxValue": "1"}]},
            "exceeds",
        ),
        ({}, "no ranges"),
    ],
)
def test_bad_ranges_are_rejected(ranges, message):
    with pytest.raises(TuningRequestError, match=message):
        parse_ranges(ranges)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["HyperParameterTuningJobConfig"].update(Strategy="Hyperband"), "Strategy"),
        (
            lambda r: r["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"].update(
                MetricName="test:acc"
            ),
            "MetricName",
        ),
        (
            lambda r: r["HyperParameterTuningJobConfig"]["ResourceLimits"].update(
                MaxParallelTrainingJobs=0
            ),
            "MaxParallelTrainingJobs",
        ),
        (lambda r: r.update(HyperParameterTuningJobName="x" * 33), "HyperParameterTuningJobName"),
        (
            lambda r: r["TrainingJobDefinition"]["InputDataConfig"].append(
                {"ChannelName": "extra"}
            ),
            "extra",
        ),
        (
            lambda r: r["TrainingJobDefinition"]["StaticHyperParameters"].update(
                learning_rate="0.1"
            ),
            "both static and tuned",
        ),
    ],
)
def test_bad_requests_are_rejected(channels, tmp_path, mutate, message):
    req = request(static=dict(STATIC))
    mutate(req)
    with pytest.raises(TuningRequestError, match=message):
        TuningJob(req, channels, tmp_path)


def test_random_seed_fixes_the_sampled_hyperparameters_across_job_names(channels, tmp_path):
    def sampled(name: str, seed: int | None) -> list[dict[str, str]]:
        req = request(name, jobs=2, parallel=1, strategy="Bayesian", seed=seed)
        job = TuningJob(req, channels, tmp_path / name)
        job.run()
        return [s["TunedHyperParameters"] for s in job.training_jobs()]

    first = sampled("seeded-a", 11)
    assert sampled("seeded-b", 11) == first
    # without a seed the job name seeds the sampler, so another name samples elsewhere
    assert sampled("unseeded-a", None) != sampled("unseeded-b", None)


def test_finished_jobs_reach_the_sampler_in_launch_order(channels, tmp_path):
    """A fast second job must not be reported before the first: the next
    trial is then sampled knowing the same trials whatever the timing."""
    from datetime import UTC, datetime

    from training.tuning_jobs import TrainingJobState

    tuning = TuningJob(request("order", jobs=4, parallel=2), channels, tmp_path)
    told: list[int] = []

    class Study:
        def tell(self, trial: int, value: float | None = None, state: object = None) -> None:
            told.append(trial)

    def job(index: int, status: str) -> TrainingJobState:
        j = TrainingJobState(index, f"j{index}", {}, {}, index, datetime.now(UTC))
        j.status = status  # type: ignore[assignment]
        j.objective = 0.9 if status == "Completed" else None
        return j

    tuning._jobs = [job(1, "InProgress"), job(2, "Completed")]
    running = list(tuning._jobs)
    tuning._wait(running, Study())
    assert told == [] and len(running) == 2  # job 2 waits for job 1
    running[0].status, running[0].objective = "Completed", 0.8
    tuning._wait(running, Study())
    assert told == [1] and [j.index for j in running] == [2]  # one slot: one new trial
    tuning._wait(running, Study())
    assert told == [1, 2] and running == []


def test_grid_strategy_runs_every_combination_of_categorical_ranges_once(channels, tmp_path):
    grid = {
        "CategoricalParameterRanges": [
            {"Name": "optimizer", "Values": ["adam", "sgd"]},
            {"Name": "use_bias", "Values": ["true", "false"]},
        ]
    }
    req = request("grid-test", strategy="Grid", parallel=2, ranges=grid)
    del req["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"]
    job, described, _ = run(req, channels, tmp_path)
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    tried = [
        (s["TunedHyperParameters"]["optimizer"], s["TunedHyperParameters"]["use_bias"])
        for s in job.training_jobs()
    ]
    assert sorted(tried) == sorted(
        (o, b) for o in ("adam", "sgd") for b in ("true", "false")
    )  # each once, without MaxNumberOfTrainingJobs


def test_grid_strategy_takes_only_categorical_ranges_and_its_own_job_count(channels, tmp_path):
    with pytest.raises(TuningRequestError, match="only CategoricalParameterRanges"):
        TuningJob(request(strategy="Grid"), channels, tmp_path)
    grid = {"CategoricalParameterRanges": [{"Name": "optimizer", "Values": ["adam", "sgd"]}]}
    with pytest.raises(TuningRequestError, match="set it to 2"):
        TuningJob(request(strategy="Grid", jobs=1, ranges=grid), channels, tmp_path)
    assert (
        TuningJob(request(strategy="Grid", jobs=2, ranges=grid), channels, tmp_path).max_jobs == 2
    )
