"""The state machine: DESIGN.md's flow, retries/catches, bounded loops, logging."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipeline_core import errors
from stacks.asl import lambda_functions_by_arn
from tests.stack.conftest import Synth, make_synth
from tests.stack.helpers import ROOT

LAMBDA_RETRY = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
FAIL_STATES = {
    "InvalidInput",
    "InvalidDataset",
    "TuningFailed",
    "QualityGateFailed",
    "EndpointFailed",
    "TransformFailed",
    "InstanceTypeUnavailable",
    "ModelRejected",
    "ApprovalTimedOut",
    "ModelNotApproved",
    "EndpointRolledBack",
    "EndpointBusy",
    "NameCollision",
    "PipelineFailed",
}


def states(s: Synth, kind: str | None = None) -> dict[str, dict[str, Any]]:
    return {n: st for n, st in s.asl["States"].items() if kind is None or st["Type"] == kind}


def lambda_module(s: Synth, state: dict[str, Any]) -> str:
    handler = lambda_functions_by_arn(s.json)[state["Resource"]]["handler"]
    return handler.split(".")[1]


# -- a tiny Choice evaluator (JSONPath subset the definition uses) ------------------

_MISSING = object()


def _get(doc: Any, path: str) -> Any:
    for part in path.removeprefix("$.").split("."):
        if not isinstance(doc, dict) or part not in doc:
            return _MISSING
        doc = doc[part]
    return doc


def _matches(rule: dict[str, Any], doc: Any) -> bool:
    if "Or" in rule:
        return any(_matches(r, doc) for r in rule["Or"])
    if "And" in rule:
        return all(_matches(r, doc) for r in rule["And"])
    if "Not" in rule:
        return not _matches(rule["Not"], doc)
    value = _get(doc, rule["Variable"])
    if "IsPresent" in rule:
        return (value is not _MISSING) == rule["IsPresent"]
    if value is _MISSING:
        raise AssertionError(f"Choice reads missing {rule['Variable']} (States.Runtime on AWS)")
    if "IsString" in rule:
        return isinstance(value, str) == rule["IsString"]
    if "StringEquals" in rule:
        return value == rule["StringEquals"]
    if "BooleanEquals" in rule:
        return value is rule["BooleanEquals"]
    raise NotImplementedError(rule)


def choose(choice: dict[str, Any], doc: Any) -> str:
    for rule in choice["Choices"]:
        if _matches(rule, doc):
            return str(rule["Next"])
    return str(choice["Default"])


# -- resource-level settings -----------------------------------------------------------


def test_standard_type_with_timeout_tracing_and_full_logging(synthesized: Synth) -> None:
    machines = synthesized.resources("AWS::StepFunctions::StateMachine")
    # The other one is the custom-resource Provider framework's waiter (cleanup).
    ((_, machine),) = [(k, m) for k, m in machines.items() if "waiterstatemachine" not in k.lower()]
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is True
    assert synthesized.asl["TimeoutSeconds"] == 6 * 3600
    group_ref = props["LoggingConfiguration"]["Destinations"][0]["CloudWatchLogsLogGroup"]
    group_lid = group_ref["LogGroupArn"]["Fn::GetAtt"][0]
    group = synthesized.json["Resources"][group_lid]["Properties"]
    # Unique per create of the stack (the stack id's UUID): a log group retained by
    # `removal_policy: retain` never blocks the next deploy of the same stack name.
    assert group["LogGroupName"] == {
        "Fn::Join": [
            "",
            [
                "/aws/vendedlogs/states/MnistLinearLearnerPipeline-pipeline-",
                {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]},
            ],
        ]
    }
    assert group["RetentionInDays"] == 30


def test_definition_is_jsonpath_only(synthesized: Synth) -> None:
    text = json.dumps(synthesized.asl)
    assert "JSONata" not in text
    assert "QueryLanguage" not in text


# -- the flow ----------------------------------------------------------------------------


def test_flow_follows_design(synthesized: Synth) -> None:
    s = synthesized.asl["States"]
    assert synthesized.asl["StartAt"] == "ValidateInput"
    chain = {
        "ValidateInput": "ModelSource",
        "ConvertDataset": "StartTuning",
        "ConvertShards": "FinalizeDataset",
        "FinalizeDataset": "StartTuning",
        "ShardConversionFailed": "StartTuning",
        "RegisterModel": "ApprovalMode",
        "WaitForApproval": "StartDeployment",
        "LoadModelPackage": "UseModelPackage",
        "UseModelPackage": "StartDeployment",
        "StartTuning": "WaitForTuning",
        "WaitForTuning": "DescribeTuning",
        "DescribeTuning": "TuningStatus",
        "StartDeployment": "EndpointMode",
        "Deploy": "ScheduleEndpointTtl",
        "ScheduleEndpointTtl": "StartEndpointPolling",
        "StartEndpointPolling": "WaitForEndpoint",
        "StartTransform": "WaitForTransform",
        "WaitForTransform": "DescribeTransform",
        "DescribeTransform": "TransformStatus",
        "WaitForEndpoint": "DescribeEndpoint",
        "DescribeEndpoint": "EndpointStatus",
        "Evaluate": "Summarize",
        "Summarize": "NotifySuccess",
        "NotifySuccess": "Succeeded",
        "NotifyFailure": "RouteFailure",
    }
    assert {name: s[name]["Next"] for name in chain} == chain
    assert s["Succeeded"]["Type"] == "Succeed"
    assert set(states(synthesized, "Fail")) == FAIL_STATES


def test_lambda_payloads_and_result_paths_match_design(synthesized: Synth) -> None:
    expected = {
        "ValidateInput": (
            "validate_input",
            {"input.$": "$", "execution_name.$": "$$.Execution.Name"},
            "$.run",
        ),
        "ConvertDataset": ("convert", {"run.$": "$.run"}, "$.data"),
        "StartTuning": ("start_tuning", {"run.$": "$.run", "data.$": "$.data"}, "$.tuning"),
        "DescribeTuning": (
            "describe_tuning",
            {"run.$": "$.run", "tuning.$": "$.tuning"},
            "$.tuning",
        ),
        "Deploy": ("deploy", {"run.$": "$.run", "tuning.$": "$.tuning"}, "$.deploy"),
        "DescribeEndpoint": (
            "describe_endpoint",
            {"run.$": "$.run", "deploy.$": "$.deploy", "endpoint.$": "$.endpoint"},
            "$.endpoint",
        ),
        "Evaluate": (
            "evaluate",
            {
                "run.$": "$.run",
                "data.$": "$.data",
                "deploy.$": "$.deploy",
                "tuning.$": "$.tuning",
                "lifecycle.$": "$.lifecycle",
                "registry.$": "$.registry",
                "execution_arn.$": "$$.Execution.Id",
            },
            "$.evaluation",
        ),
        "RegisterModel": (
            "register_model",
            {"run.$": "$.run", "tuning.$": "$.tuning", "data.$": "$.data"},
            "$.registry",
        ),
        "LoadModelPackage": ("load_model_package", {"run.$": "$.run"}, "$.package"),
        "ScheduleEndpointTtl": (
            "schedule_ttl",
            {"run.$": "$.run", "deploy.$": "$.deploy"},
            "$.lifecycle.ttl",
        ),
        "StartTransform": (
            "start_transform",
            {"run.$": "$.run", "tuning.$": "$.tuning", "data.$": "$.data"},
            "$.deploy",
        ),
        "DescribeTransform": (
            "describe_transform",
            {"run.$": "$.run", "deploy.$": "$.deploy", "transform.$": "$.lifecycle.transform"},
            "$.lifecycle.transform",
        ),
    }
    s = synthesized.asl["States"]
    for name, (module, payload, result_path) in expected.items():
        assert lambda_module(synthesized, s[name]) == module, name
        # payload_response_only: the function ARN itself, no Payload wrapper.
        assert s[name]["Resource"].startswith("arn:aws:lambda:"), name
        assert s[name]["Parameters"] == payload, name
        assert s[name]["ResultPath"] == result_path, name


def test_waits_read_poll_seconds_from_the_run(synthesized: Synth) -> None:
    for name, wait in states(synthesized, "Wait").items():
        assert wait == {
            "Type": "Wait",
            "SecondsPath": "$.run.poll_seconds",
            "Next": wait["Next"],
        }, name


def test_every_task_retries_transient_errors_and_catches_all_last(synthesized: Synth) -> None:
    tasks = states(synthesized, "Task")
    assert len(tasks) == 17
    for name, task in tasks.items():
        assert task.get("Retry"), name
        catches = task["Catch"]
        assert catches[-1]["ErrorEquals"] == ["States.ALL"], name
        if task["Resource"].startswith("arn:aws:lambda:"):
            retried = {e for r in task["Retry"] for e in r["ErrorEquals"]}
            assert LAMBDA_RETRY | {"ThrottlingError"} <= retried, name
            # Waiting for another execution's endpoint lease is a fixed-interval wait.
            backoff = [r for r in task["Retry"] if r["ErrorEquals"] != ["EndpointBusyError"]]
            assert all(r["BackoffRate"] >= 2 for r in backoff), name
            named = catches[0]["ErrorEquals"]
            assert {
                "InvalidInputError",
                "InvalidDatasetError",
                "SourceNotFoundError",
                "SourceAccessDeniedError",
                "TuningJobFailedError",
                "PollLimitExceededError",
                "QualityGateFailedError",
                "EndpointDeploymentFailedError",
                "ResourceLimitError",
            } <= set(named), name
            for catch in catches:
                assert catch == {**catch, "ResultPath": "$.error", "Next": "NotifyFailure"}, name


def test_named_catches_cover_every_pipeline_error(synthesized: Synth) -> None:
    names = {
        cls.__name__
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.PipelineError)
    } - {"PipelineError"}
    for name, task in states(synthesized, "Task").items():
        if task["Resource"].startswith("arn:aws:lambda:"):
            assert names <= set(task["Catch"][0]["ErrorEquals"]), name


def test_resource_limits_are_retried_only_where_sagemaker_capacity_is_requested(
    synthesized: Synth,
) -> None:
    for name, task in states(synthesized, "Task").items():
        retried = {e for r in task["Retry"] for e in r["ErrorEquals"]}
        asks_for_capacity = name in {"StartTuning", "Deploy", "StartTransform"}
        assert ("ResourceLimitError" in retried) == asks_for_capacity, name


def test_failed_notification_still_reaches_a_fail_state(synthesized: Synth) -> None:
    notify = synthesized.asl["States"]["NotifyFailure"]
    assert notify["Resource"] == "arn:aws:states:::sns:publish"
    assert notify["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.notify_error", "Next": "RouteFailure"}
    ]
    assert notify["ResultPath"] is None  # keeps $.error for RouteFailure


def test_fail_states_carry_the_error_and_its_cause(synthesized: Synth) -> None:
    for name, fail in states(synthesized, "Fail").items():
        assert fail["ErrorPath"] == "$.error.Error", name
        assert fail["CausePath"] == "$.error.Cause", name


@pytest.mark.parametrize(
    ("error", "fail_state"),
    [
        ("InvalidInputError", "InvalidInput"),
        ("TooFewTrainObjectsError", "InvalidInput"),
        ("ShardConversionError", "PipelineFailed"),
        ("InvalidDatasetError", "InvalidDataset"),
        ("SourceNotFoundError", "InvalidDataset"),
        ("SourceAccessDeniedError", "InvalidDataset"),
        ("ModelTestDataMissingError", "InvalidDataset"),  # a version's test data is gone
        ("TuningJobFailedError", "TuningFailed"),
        ("QualityGateFailedError", "QualityGateFailed"),
        ("EndpointDeploymentFailedError", "EndpointFailed"),
        ("EndpointBusyError", "EndpointBusy"),
        ("NameCollisionError", "NameCollision"),
        ("PollLimitExceededError", "PipelineFailed"),
        ("ResourceLimitError", "PipelineFailed"),
        ("States.Timeout", "PipelineFailed"),
        ("UnexpectedStatusError", "PipelineFailed"),
        ("ModelPackageRejectedError", "ModelRejected"),
        ("ApprovalTimedOutError", "ApprovalTimedOut"),
        ("ModelPackageNotApprovedError", "ModelNotApproved"),
        ("EndpointUpdateRolledBackError", "EndpointRolledBack"),
    ],
)
def test_route_failure_sends_each_error_to_its_fail_state(
    synthesized: Synth, error: str, fail_state: str
) -> None:
    route = synthesized.asl["States"]["RouteFailure"]
    assert choose(route, {"error": {"Error": error, "Cause": "{}"}}) == fail_state


def test_every_choice_has_a_default(synthesized: Synth) -> None:
    choices = states(synthesized, "Choice")
    assert set(choices) == {
        "SourceKind",
        "TuningStatus",
        "QualityGate",
        "EndpointMode",
        "EndpointStatus",
        "TransformStatus",
        "RouteFailure",
        "ModelSource",
        "ApprovalMode",
    }
    for name, choice in choices.items():
        assert choice["Default"], name


@pytest.mark.parametrize(
    ("run", "next_state"),
    [
        ({"source_kind": "sharded"}, "ConvertShards"),
        ({"source_kind": "pickle"}, "ConvertDataset"),
        ({}, "ConvertDataset"),
    ],
)
def test_source_kind_picks_the_distributed_map_only_for_sharded_sources(
    synthesized: Synth, run: dict[str, Any], next_state: str
) -> None:
    assert choose(synthesized.asl["States"]["SourceKind"], {"run": run}) == next_state


def test_shards_convert_in_a_bounded_distributed_map_over_the_source_prefix(
    synthesized: Synth,
) -> None:
    dmap = synthesized.asl["States"]["ConvertShards"]
    assert dmap["Type"] == "Map"
    assert dmap["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "STANDARD",
    }
    assert dmap["MaxConcurrency"] == synthesized.stack.settings.pipeline.map_max_concurrency
    reader = dmap["ItemReader"]
    assert reader["Resource"] == "arn:aws:states:::s3:listObjectsV2"
    assert reader["Parameters"]["Prefix.$"] == "$.run.source_prefix"
    buckets = {
        f["environment"].get("DATA_BUCKET")
        for f in lambda_functions_by_arn(synthesized.json).values()
    } - {None}
    assert reader["Parameters"]["Bucket"] in buckets
    # moto parses none of these, and none is needed.
    assert not {"ItemBatcher", "ResultWriter", "ToleratedFailurePercentage"} & set(dmap)
    assert dmap["ItemSelector"] == {"run.$": "$.run", "item.$": "$$.Map.Item.Value"}
    assert dmap["ResultPath"] is None  # children write receipts; the state stays small
    child = dmap["ItemProcessor"]["States"]["ConvertShard"]
    assert lambda_module(synthesized, child) == "convert_shard"
    assert child["Parameters"] == {"run.$": "$.run", "item.$": "$.item"}
    # ResultPath null on the Map does not stop it aggregating its children's
    # outputs (256 KB limit): each child must output nothing itself.
    assert child["ResultPath"] is None and child["OutputPath"] is None
    assert child["End"] is True
    retried = {e for r in child["Retry"] for e in r["ErrorEquals"]}
    assert LAMBDA_RETRY | {"ThrottlingError"} <= retried
    assert dmap["Catch"] == [
        {
            "ErrorEquals": ["States.ALL"],
            "ResultPath": "$.map_error",
            "Next": "ShardConversionFailed",
        }
    ]
    assert synthesized.asl["States"]["ShardConversionFailed"]["Parameters"] == {
        "run.$": "$.run",
        "map_error.$": "$.map_error",
    }


def _longest_wait_seconds(retrier: dict[str, Any]) -> float:
    """The retrier's total back-off before it gives up (every delay at its cap)."""
    interval = float(retrier.get("IntervalSeconds", 1))
    rate = float(retrier.get("BackoffRate", 2.0))
    cap = float(retrier.get("MaxDelaySeconds", float("inf")))
    return sum(min(cap, interval * rate**n) for n in range(int(retrier["MaxAttempts"])))


def test_a_throttled_shard_waits_minutes_for_the_lambda_concurrency_quota(
    synthesized: Synth,
) -> None:
    """New accounts often have 10 concurrent Lambda executions for every
    function; the Map starts ``map_max_concurrency`` children at once. A
    throttled child must wait its turn, not fail the Map."""
    dmap = synthesized.asl["States"]["ConvertShards"]
    retries = dmap["ItemProcessor"]["States"]["ConvertShard"]["Retry"]
    # Step Functions uses the first retrier whose ErrorEquals matches.
    first = next(r for r in retries if "Lambda.TooManyRequestsException" in r["ErrorEquals"])
    assert first["ErrorEquals"] == ["Lambda.TooManyRequestsException"]
    assert first is retries[0]
    assert first["JitterStrategy"] == "FULL"  # children throttled together spread out
    assert first["MaxDelaySeconds"] <= 120
    assert _longest_wait_seconds(first) >= 15 * 60


@pytest.mark.parametrize(
    ("tuning", "next_state"),
    [
        ({"status": "Completed"}, "QualityGate"),
        ({"status": "InProgress"}, "WaitForTuning"),
        ({"status": "Stopping"}, "WaitForTuning"),
        ({"status": "Failed"}, "TuningJobNotCompleted"),
        ({"status": "Stopped"}, "TuningJobNotCompleted"),
        ({"status": "Weird"}, "UnexpectedTuningStatus"),
        ({}, "UnexpectedTuningStatus"),
    ],
)
def test_tuning_status_never_loops_on_unknown_or_missing_status(
    synthesized: Synth, tuning: dict[str, Any], next_state: str
) -> None:
    assert choose(synthesized.asl["States"]["TuningStatus"], {"tuning": tuning}) == next_state


@pytest.mark.parametrize(
    ("endpoint", "next_state"),
    [
        ({"status": "InService"}, "Evaluate"),
        ({"status": "InProgress"}, "WaitForEndpoint"),
        ({"status": "Failed"}, "EndpointNotInService"),
        ({"status": "UpdateFailed"}, "EndpointUpdateRolledBack"),
        ({"status": "OutOfService"}, "UnexpectedEndpointStatus"),
        ({}, "UnexpectedEndpointStatus"),
    ],
)
def test_endpoint_status_never_loops_on_unknown_or_missing_status(
    synthesized: Synth, endpoint: dict[str, Any], next_state: str
) -> None:
    assert choose(synthesized.asl["States"]["EndpointStatus"], {"endpoint": endpoint}) == next_state


@pytest.mark.parametrize(
    ("tuning", "next_state"),
    [
        ({"gate": {"passed": True}}, "RegisterModel"),
        ({"gate": {"passed": False}}, "QualityGateNotMet"),
        ({"gate": {}}, "QualityGateNotMet"),
        ({}, "QualityGateNotMet"),
    ],
)
def test_quality_gate_deploys_only_when_passed(
    synthesized: Synth, tuning: dict[str, Any], next_state: str
) -> None:
    assert choose(synthesized.asl["States"]["QualityGate"], {"tuning": tuning}) == next_state


def test_choice_detected_failures_set_error_like_a_catch(synthesized: Synth) -> None:
    expected = {
        "TuningJobNotCompleted": ("TuningJobFailedError", "$.tuning"),
        "UnexpectedTuningStatus": ("UnexpectedStatusError", "$.tuning"),
        "QualityGateNotMet": ("QualityGateFailedError", "$.tuning"),
        "EndpointNotInService": ("EndpointDeploymentFailedError", "$.endpoint"),
        "UnexpectedEndpointStatus": ("UnexpectedStatusError", "$.endpoint"),
        "EndpointUpdateRolledBack": ("EndpointUpdateRolledBackError", "$.endpoint"),
        "NoApprovalInTime": ("ApprovalTimedOutError", "$.registry"),
    }
    for name, (error, path) in expected.items():
        step = synthesized.asl["States"][name]
        assert step["Type"] == "Pass"
        assert step["ResultPath"] == "$.error"
        assert step["Parameters"] == {"Error": error, "Cause.$": f"States.JsonToString({path})"}
        assert step["Next"] == "NotifyFailure"


def test_endpoint_polling_starts_from_zero_polls(synthesized: Synth) -> None:
    seed = synthesized.asl["States"]["StartEndpointPolling"]
    assert seed["Result"] == {"status": "Pending", "polls": 0}
    assert seed["ResultPath"] == "$.endpoint"


def test_notifications_publish_to_the_stack_topic(synthesized: Synth) -> None:
    topics = synthesized.resources("AWS::SNS::Topic")
    (topic_lid,) = topics
    for name in ("NotifySuccess", "NotifyFailure"):
        params = synthesized.asl["States"][name]["Parameters"]
        assert params["TopicArn"].endswith(f":{topic_lid}"), name
    assert synthesized.asl["States"]["NotifySuccess"]["Catch"][-1]["Next"] == "Succeeded"


# -- the execution output ---------------------------------------------------------------

SUMMARY_PARAMETERS = {
    "execution_name.$": "$$.Execution.Name",
    "target_digit.$": "$.run.target_digit",
    "confusion_matrix.$": "$.evaluation.confusion_matrix",
    "metrics.$": "$.evaluation.metrics",
    "single_prediction.$": "$.evaluation.single_prediction",
    "report_uri.$": "$.evaluation.report_uri",
    "tuning_job.$": "$.tuning.name",
    "best_training_job.$": "$.tuning.best",
    "endpoint_name.$": "$.deploy.endpoint_name",
    "endpoint_config_name.$": "$.deploy.endpoint_config_name",
    "endpoint.$": "$.evaluation.endpoint",
    "cost.$": "$.evaluation.cost",
    "model_package_arn.$": "$.registry.model_package_arn",
    "approval_status.$": "$.registry.approval_status",
}


def _apply(parameters: dict[str, Any], doc: Any, execution_name: str) -> dict[str, Any]:
    """ASL Parameters with plain ``$.a.b`` / ``$$.Execution.Name`` paths (the subset used)."""
    out: dict[str, Any] = {}
    for key, value in parameters.items():
        if not key.endswith(".$"):
            out[key] = value
        elif value == "$$.Execution.Name":
            out[key[:-2]] = execution_name
        elif value == "$":
            out[key[:-2]] = doc
        else:
            got = _get(doc, value)
            assert got is not _MISSING, f"{key}: {value} is missing (States.Runtime on AWS)"
            out[key[:-2]] = got
    return out


PACKAGE_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mnist-ll-models/1"


def _final_state() -> dict[str, Any]:
    """What reaches Summarize on the success path: every result_path filled."""
    best = {
        "training_job_name": "mnist-ll-exec-1-abcd1234-003-0f1e2d3c",
        "objective_metric": "validation:binary_f_beta",
        "objective_value": 0.93,
        "hyperparameters": {"mini_batch_size": "200"},
        "model_artifacts": "s3://b/runs/exec-1/tuning/j/output/model.tar.gz",
    }
    evaluation = {
        "confusion_matrix": {"tp": 90, "fp": 5, "tn": 890, "fn": 15},
        "metrics": {"accuracy": 0.98, "precision": 0.947, "recall": 0.857, "f1": 0.9},
        "single_prediction": {"score": 0.01, "predicted_label": 0, "actual_label": 0},
        "report_uri": "s3://b/runs/exec-1/report.json",
        "endpoint": {"mode": "realtime", "name": "mnist-ll-endpoint", "deletes_at": None},
        "cost": {"usd_estimate": 0.1},
    }
    return {
        "input": {"target_digit": 0},
        "run": {"execution_name": "exec-1", "target_digit": 0, "poll_seconds": 60},
        "data": {"train_uri": "s3://b/runs/exec-1/data/train/", "counts": {"train": 50000}},
        "tuning": {"name": "mnist-ll-exec-1-abcd1234", "status": "Completed", "best": best},
        "deploy": {
            "endpoint_name": "mnist-ll-endpoint",
            "endpoint_config_name": "mnist-ll-exec-1-abcd1234-config",
            "model_name": "mnist-ll-exec-1-abcd1234-model",
        },
        "endpoint": {"status": "InService", "polls": 7, "retired": []},
        "evaluation": evaluation,
        "registry": {"model_package_arn": PACKAGE_ARN, "approval_status": "Approved"},
    }


def test_summarize_builds_exactly_the_compact_summary_and_replaces_the_state(
    synthesized: Synth,
) -> None:
    summarize = synthesized.asl["States"]["Summarize"]
    # No ResultPath/InputPath/OutputPath: the summary replaces the whole state.
    assert summarize == {"Type": "Pass", "Parameters": SUMMARY_PARAMETERS, "Next": "NotifySuccess"}


def test_succeeded_receives_the_summary_that_notify_success_publishes(
    synthesized: Synth,
) -> None:
    s = synthesized.asl["States"]
    state = _final_state()
    summary = _apply(s["Summarize"]["Parameters"], state, "exec-1")
    assert summary == {
        "execution_name": "exec-1",
        "target_digit": 0,
        "confusion_matrix": state["evaluation"]["confusion_matrix"],
        "metrics": state["evaluation"]["metrics"],
        "single_prediction": state["evaluation"]["single_prediction"],
        "report_uri": "s3://b/runs/exec-1/report.json",
        "tuning_job": "mnist-ll-exec-1-abcd1234",
        "best_training_job": state["tuning"]["best"],
        "endpoint_name": "mnist-ll-endpoint",
        "endpoint_config_name": "mnist-ll-exec-1-abcd1234-config",
        "endpoint": {"mode": "realtime", "name": "mnist-ll-endpoint", "deletes_at": None},
        "cost": {"usd_estimate": 0.1},
        "model_package_arn": PACKAGE_ARN,
        "approval_status": "Approved",
    }

    notify = s["NotifySuccess"]
    assert _apply(notify["Parameters"], summary, "exec-1")["Message"] == summary
    # The publish result is discarded and nothing filters the state on the way.
    assert notify["ResultPath"] is None
    assert not {"InputPath", "OutputPath", "ResultSelector"} & set(notify)
    assert notify["Next"] == "Succeeded"
    assert s["Succeeded"] == {"Type": "Succeed"}  # its input is the execution output


def test_asl_validator_accepts_the_extracted_definition(synthesized: Synth, tmp_path: Path) -> None:
    if not (ROOT / "node_modules" / ".bin" / "asl-validator").exists():
        pytest.fail("asl-validator is missing: run `make setup` (it runs npm ci)")
    path = tmp_path / "asl.json"
    path.write_text(json.dumps(synthesized.asl))
    npx = shutil.which("npx") or "npx"
    result = subprocess.run(
        [npx, "--no-install", "asl-validator", "--json-path", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _busy_retries(s: Synth) -> list[dict[str, Any]]:
    """Retries on EndpointBusyError; only Deploy may have one."""
    found: list[dict[str, Any]] = []
    for name, task in states(s, "Task").items():
        for retry in task["Retry"]:
            if "EndpointBusyError" in retry["ErrorEquals"]:
                assert name == "Deploy", name
                found.append(retry)
    return found


def test_deploy_waits_its_turn_for_a_busy_endpoint_a_bounded_number_of_times(
    synthesized: Synth,
) -> None:
    """cdk.json `endpoint_busy: wait` (the default): Deploy retries at a fixed interval."""
    config = synthesized.stack.settings.pipeline
    assert config.endpoint_busy == "wait"
    assert _busy_retries(synthesized) == [
        {
            "ErrorEquals": ["EndpointBusyError"],
            "IntervalSeconds": config.endpoint_busy_interval_seconds,
            "MaxAttempts": config.endpoint_busy_retries,
            "BackoffRate": 1,
        }
    ]


def test_deploy_fails_fast_on_a_busy_endpoint_when_configured_to() -> None:
    fail_fast = make_synth({"pipeline": {"endpoint_busy": "fail"}})
    assert _busy_retries(fail_fast) == []
    route = fail_fast.asl["States"]["RouteFailure"]
    assert choose(route, {"error": {"Error": "EndpointBusyError", "Cause": "{}"}}) == "EndpointBusy"
    custom = make_synth(
        {"pipeline": {"endpoint_busy_retries": 4, "endpoint_busy_interval_seconds": 30}}
    )
    assert [(r["IntervalSeconds"], r["MaxAttempts"]) for r in _busy_retries(custom)] == [(30, 4)]
