from __future__ import annotations

from typing import Any

import pytest
from pipeline_testlib import BUCKET, ENDPOINT, SALT, STACK_TAG, make_run

from pipeline_core.config import DEFAULTS
from pipeline_core.errors import InvalidInputError
from pipeline_core.inputs import RunSpec


def test_empty_input_resolves_to_the_defaults() -> None:
    run = make_run("exec-1", {})
    assert run.source == DEFAULTS.source_template.format(region="us-east-1")
    assert run.target_digit == 0
    assert run.ranges == DEFAULTS.ranges
    assert run.max_jobs == DEFAULTS.max_jobs
    assert run.endpoint_name == ENDPOINT
    assert run.bucket == BUCKET
    assert run.prefix == "runs/exec-1/"
    assert run.poll_seconds == DEFAULTS.poll_seconds
    assert dict(run.tags) == {
        "mnist-ll:stack": STACK_TAG,
        "mnist-ll:execution": "exec-1",
        "mnist-ll:deployment": SALT,
    }
    assert len(run.names.tuning_job) <= 32


def test_console_comment_is_accepted_and_ignored() -> None:
    assert make_run("e", {"Comment": "Insert your JSON here"}) == make_run("e", {})


def test_full_input_overrides_defaults() -> None:
    raw = {
        "source": "s3://my-bucket/data/mnist.pkl.gz",
        "target_digit": 7,
        "ranges": [
            {
                "name": "wd",
                "kind": "Continuous",
                "min_value": 1e-7,
                "max_value": 1,
                "scaling": "Auto",
            },
            {"name": "mini_batch_size", "min_value": 100, "max_value": 500},
        ],
        "objective_metric": "validation:objective_loss",
        "objective_type": "Minimize",
        "strategy": "Random",
        "max_jobs": 10,
        "max_parallel_jobs": 4,
        "training_instance_type": "ml.m5.large",
        "endpoint_instance_type": "ml.c5.large",
        "min_objective": 0.2,
        "endpoint_name": "mnist-ll-Other-Endpoint-1",
    }
    run = make_run("e", raw)
    assert run.source == raw["source"]
    assert run.target_digit == 7
    assert [r.name for r in run.ranges] == ["wd", "mini_batch_size"]
    assert run.ranges[1].kind == "Integer"
    assert (run.objective_metric, run.objective_type) == ("validation:objective_loss", "Minimize")
    assert (run.strategy, run.max_jobs, run.max_parallel_jobs) == ("Random", 10, 4)
    assert run.endpoint_instance_type == "ml.c5.large"
    assert run.endpoint_name == "mnist-ll-Other-Endpoint-1"


def test_objective_direction_follows_the_metric_when_not_given() -> None:
    assert make_run("e", {"objective_metric": "validation:objective_loss"}).objective_type == (
        "Minimize"
    )


def test_run_spec_round_trips_through_its_dict() -> None:
    run = make_run("my.exec_1", {"target_digit": 3})
    assert RunSpec.from_dict(run.to_dict()) == run


def test_run_spec_dict_is_json_serialisable() -> None:
    import json

    json.dumps(make_run().to_dict())


BAD: list[tuple[str, Any, str]] = [
    ("unknown key", {"sorce": "s3://b/k"}, "sorce"),
    ("source not s3", {"source": "http://example.com/x.pkl.gz"}, "source"),
    ("source local path without flag", {"source": "/tmp/mnist.pkl.gz"}, "source"),
    ("source file uri without flag", {"source": "file:///tmp/mnist.pkl.gz"}, "source"),
    ("source no key", {"source": "s3://bucket-name/"}, "source"),
    ("approval unknown", {"approval": "later"}, "approval"),
    (
        "model_package_arn not a version",
        {"model_package_arn": "arn:aws:s3:::b/k"},
        "model_package_arn",
    ),
    ("source bad bucket", {"source": "s3://B_ad/key"}, "source"),
    ("source not a string", {"source": 5}, "source"),
    ("source empty prefix segment", {"source": "s3://bucket-name/data//"}, "source"),
    ("sharded source in another bucket", {"source": "s3://other-bucket/sets/"}, "source"),
    ("instance count zero", {"training_instance_count": 0}, "training_instance_count"),
    ("instance count too big", {"training_instance_count": 21}, "training_instance_count"),
    ("instance count string", {"training_instance_count": "2"}, "training_instance_count"),
    ("instance count bool", {"training_instance_count": True}, "training_instance_count"),
    ("target digit too big", {"target_digit": 10}, "target_digit"),
    ("target digit negative", {"target_digit": -1}, "target_digit"),
    ("target digit bool", {"target_digit": True}, "target_digit"),
    ("target digit string", {"target_digit": "0"}, "target_digit"),
    ("target digit float", {"target_digit": 1.0}, "target_digit"),
    ("max jobs bool", {"max_jobs": True}, "max_jobs"),
    ("max jobs zero", {"max_jobs": 0}, "max_jobs"),
    ("max jobs over limit", {"max_jobs": 501}, "max_jobs"),
    ("max parallel over jobs", {"max_jobs": 2, "max_parallel_jobs": 3}, "max_parallel_jobs"),
    ("max parallel over limit", {"max_jobs": 10, "max_parallel_jobs": 5}, "max_parallel_jobs"),
    ("bad metric", {"objective_metric": "validation:mse"}, "objective_metric"),
    ("bad objective type", {"objective_type": "Maximise"}, "objective_type"),
    (
        "objective type contradicts metric",
        {"objective_metric": "validation:objective_loss", "objective_type": "Maximize"},
        "objective_type",
    ),
    ("bad strategy", {"strategy": "Grid"}, "strategy"),
    ("bad training instance", {"training_instance_type": "c4.xlarge"}, "training_instance_type"),
    ("bad endpoint instance", {"endpoint_instance_type": "ml.m4"}, "endpoint_instance_type"),
    ("min objective string", {"min_objective": "0.9"}, "min_objective"),
    ("min objective bool", {"min_objective": True}, "min_objective"),
    ("min objective nan", {"min_objective": float("nan")}, "min_objective"),
    ("endpoint name underscore", {"endpoint_name": "mnist-ll-my_endpoint"}, "endpoint_name"),
    ("endpoint name too long", {"endpoint_name": "mnist-ll-" + "e" * 55}, "endpoint_name"),
    ("endpoint name far too long", {"endpoint_name": "e" * 500}, "endpoint_name"),
    ("endpoint name leading hyphen", {"endpoint_name": "-endpoint"}, "endpoint_name"),
    ("endpoint name trailing hyphen", {"endpoint_name": "mnist-ll-ep-"}, "endpoint_name"),
    ("endpoint name empty", {"endpoint_name": ""}, "endpoint_name"),
    ("endpoint name not a string", {"endpoint_name": 7}, "endpoint_name"),
    ("endpoint name without prefix", {"endpoint_name": "other-endpoint"}, "endpoint_name"),
    ("endpoint name prefix only", {"endpoint_name": "mnist-ll"}, "endpoint_name"),
    ("endpoint name prefix in other case", {"endpoint_name": "MNIST-LL-ep"}, "endpoint_name"),
    ("endpoint name prefix not at start", {"endpoint_name": "x-mnist-ll-ep"}, "endpoint_name"),
    ("source key too long", {"source": "s3://bucket/" + "k" * 1025}, "source"),
    ("source not a string list", {"source": ["s3://b/k"]}, "source"),
    ("unknown key next to valid ones", {"target_digit": 1, "MaxJobs": 3}, "MaxJobs"),
    ("max jobs string", {"max_jobs": "6"}, "max_jobs"),
    ("max jobs float", {"max_jobs": 6.0}, "max_jobs"),
    ("max jobs null", {"max_jobs": None}, "max_jobs"),
    ("max parallel zero", {"max_parallel_jobs": 0}, "max_parallel_jobs"),
    ("max parallel list", {"max_parallel_jobs": [2]}, "max_parallel_jobs"),
    ("strategy not a string", {"strategy": 1}, "strategy"),
    ("metric not a string", {"objective_metric": None}, "objective_metric"),
    ("instance type not a string", {"training_instance_type": 4}, "training_instance_type"),
    ("instance type without size", {"training_instance_type": "ml.c4"}, "training_instance_type"),
    (
        "instance type not sagemaker",
        {"endpoint_instance_type": "m4.xlarge"},
        "endpoint_instance_type",
    ),
    (
        "instance type upper case",
        {"endpoint_instance_type": "ML.M4.XLARGE"},
        "endpoint_instance_type",
    ),
    ("min objective inf", {"min_objective": float("inf")}, "min_objective"),
    ("min objective list", {"min_objective": [0.9]}, "min_objective"),
    ("ranges not a list", {"ranges": {"name": "wd"}}, "ranges"),
    ("ranges empty", {"ranges": []}, "ranges"),
    (
        "range unknown parameter",
        {"ranges": [{"name": "epochs", "min_value": 1, "max_value": 2}]},
        "ranges[0].name",
    ),
    (
        "range inverted",
        {"ranges": [{"name": "wd", "min_value": 0.5, "max_value": 0.1}]},
        "ranges[0]",
    ),
    (
        "range outside limits",
        {"ranges": [{"name": "wd", "min_value": 1e-9, "max_value": 0.1}]},
        "ranges[0]",
    ),
    (
        "range above limits",
        {"ranges": [{"name": "learning_rate", "min_value": 0.1, "max_value": 2}]},
        "ranges[0]",
    ),
    (
        "range bool bound",
        {"ranges": [{"name": "wd", "min_value": False, "max_value": 0.1}]},
        "ranges[0].min_value",
    ),
    (
        "range string bound",
        {"ranges": [{"name": "wd", "min_value": "0.1", "max_value": 0.5}]},
        "ranges[0].min_value",
    ),
    ("range missing bound", {"ranges": [{"name": "wd", "min_value": 0.1}]}, "ranges[0].max_value"),
    (
        "range wrong kind",
        {"ranges": [{"name": "wd", "kind": "Integer", "min_value": 0.1, "max_value": 0.5}]},
        "ranges[0]",
    ),
    (
        "range fractional integer",
        {"ranges": [{"name": "mini_batch_size", "min_value": 100.5, "max_value": 500}]},
        "ranges[0]",
    ),
    (
        "range bad scaling",
        {"ranges": [{"name": "wd", "min_value": 0.1, "max_value": 0.5, "scaling": "Exp"}]},
        "ranges[0]",
    ),
    (
        "range unknown key",
        {"ranges": [{"name": "wd", "min_value": 0.1, "max_value": 0.5, "step": 1}]},
        "ranges[0]",
    ),
    (
        "range duplicate",
        {"ranges": [{"name": "wd", "min_value": 0.1, "max_value": 0.5}] * 2},
        "ranges",
    ),
    ("range not an object", {"ranges": ["wd"]}, "ranges[0]"),
    (
        "range equal bounds",
        {"ranges": [{"name": "wd", "min_value": 0.1, "max_value": 0.1}]},
        "ranges[0]",
    ),
    (
        "range integer outside limits",
        {"ranges": [{"name": "mini_batch_size", "min_value": 0, "max_value": 20000}]},
        "ranges[0]",
    ),
    (
        "range infinite bound",
        {"ranges": [{"name": "wd", "min_value": 0.1, "max_value": float("inf")}]},
        "ranges[0]",
    ),
    (
        "range logarithmic from zero",
        {
            "ranges": [
                {
                    "name": "mini_batch_size",
                    "min_value": 0,
                    "max_value": 10,
                    "scaling": "Logarithmic",
                }
            ]
        },
        "ranges[0]",
    ),
    (
        "range reverse logarithmic reaching one",
        {
            "ranges": [
                {"name": "wd", "min_value": 0.1, "max_value": 1.0, "scaling": "ReverseLogarithmic"}
            ]
        },
        "ranges[0]",
    ),
    (
        "range reverse logarithmic integer",
        {
            "ranges": [
                {
                    "name": "mini_batch_size",
                    "min_value": 1,
                    "max_value": 10,
                    "scaling": "ReverseLogarithmic",
                }
            ]
        },
        "ranges[0]",
    ),
    ("range name missing", {"ranges": [{"min_value": 0.1, "max_value": 0.5}]}, "ranges[0].name"),
    ("random seed negative", {"random_seed": -1}, "random_seed"),
    ("random seed too large", {"random_seed": 2**31}, "random_seed"),
    ("random seed text", {"random_seed": "7"}, "random_seed"),
    ("random seed boolean", {"random_seed": True}, "random_seed"),
    (
        "range kind unknown",
        {"ranges": [{"name": "wd", "kind": "Float", "min_value": 0.1, "max_value": 0.5}]},
        "ranges[0]",
    ),
]


@pytest.mark.parametrize(("raw", "key"), [(b[1], b[2]) for b in BAD], ids=[b[0] for b in BAD])
def test_invalid_input_raises_naming_the_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        make_run("e", raw)
    # An unknown key reads "unknown key <key>: did you mean …?".
    assert str(info.value).startswith((key, f"unknown key {key}")), str(info.value)


@pytest.mark.parametrize("raw", [None, {}])
def test_missing_input_is_valid(raw: Any) -> None:
    assert make_run("e", raw).target_digit == 0


@pytest.mark.parametrize("raw", [[1, 2], "text", 3])
def test_non_object_input_is_rejected(raw: Any) -> None:
    with pytest.raises(InvalidInputError, match=r"^input"):
        make_run("e", raw)


@pytest.mark.parametrize("name", ["", "x" * 81])
def test_execution_name_out_of_bounds_is_rejected(name: str) -> None:
    with pytest.raises(InvalidInputError, match=r"^execution_name"):
        make_run(name, {})


@pytest.mark.parametrize("name", ["retrain(2)", "it's-mine", "go!"])
def test_an_execution_name_the_registry_metadata_refuses_fails_at_validation(name: str) -> None:
    # Step Functions takes these names; CustomerMetadataProperties would refuse
    # them at RegisterModel, after the tuning has been paid for.
    with pytest.raises(InvalidInputError, match=r"^execution_name: .*letters, digits"):
        make_run(name, {})


@pytest.mark.parametrize("name", ["nightly-2026-12-07", "a_b.c:d=e+f@g", "ünïcode-1"])
def test_execution_names_within_the_metadata_pattern_are_accepted(name: str) -> None:
    assert make_run(name, {}).execution_name == name


def test_an_endpoint_only_instance_type_is_refused_for_training_at_validation() -> None:
    # ml.c5.large is allowed by the stack (endpoints) but not a TrainingInstanceType.
    with pytest.raises(InvalidInputError, match=r"^training_instance_type: ml.c5.large is not a"):
        make_run("e", {"training_instance_type": "ml.c5.large"})
    assert make_run("e", {"endpoint_instance_type": "ml.c5.large"}).endpoint_instance_type == (
        "ml.c5.large"
    )


@pytest.mark.parametrize(
    "source", ["/data/mnist.pkl.gz", "file:///data/mnist.pkl.gz", "rel/x.pkl.gz"]
)
def test_local_sources_are_accepted_only_with_the_flag(source: str) -> None:
    assert make_run("e", {"source": source}, allow_local_sources=True).source == source


def test_local_flag_still_rejects_other_schemes() -> None:
    with pytest.raises(InvalidInputError, match=r"^source"):
        make_run("e", {"source": "https://x/y"}, allow_local_sources=True)


def test_endpoint_name_with_our_prefix_of_the_maximum_length_is_accepted() -> None:
    name = "mnist-ll-" + "e" * 54
    assert len(name) == 63
    assert make_run("e", {"endpoint_name": name}).endpoint_name == name


def test_endpoint_name_prefix_follows_the_configured_name_prefix() -> None:
    from dataclasses import replace

    config = replace(DEFAULTS, name_prefix="digits")
    run = make_run("e", {"endpoint_name": "digits-ep"}, config=config)
    assert run.endpoint_name == "digits-ep"
    with pytest.raises(InvalidInputError, match=r"^endpoint_name: .*'digits-'"):
        make_run("e", {"endpoint_name": "mnist-ll-ep"}, config=config)


def test_reverse_logarithmic_range_inside_zero_one_is_accepted() -> None:
    raw = {"ranges": [{"name": "wd", "min_value": 0.5, "max_value": 0.999,
                       "scaling": "ReverseLogarithmic"}]}  # fmt: skip
    assert make_run("e", raw).ranges[0].scaling == "ReverseLogarithmic"


def test_every_execution_input_key_is_documented_and_checked() -> None:
    from pipeline_core.inputs import INPUT_KEYS
    from tests.core.test_endpoint_modes import BAD as LIFECYCLE_BAD

    # Each key but Comment has at least one rejection case (here or in test_endpoint_modes).
    covered = {next(iter(raw)) for _, raw, _ in [*BAD, *LIFECYCLE_BAD] if raw}
    assert INPUT_KEYS - {"Comment"} <= covered


def test_random_seed_is_optional_and_survives_the_run_spec_round_trip() -> None:
    assert make_run("e").random_seed is None
    run = make_run("e", {"random_seed": 2**31 - 1})
    assert run.random_seed == 2**31 - 1
    assert RunSpec.from_dict(run.to_dict()) == run


def test_a_prefix_source_is_sharded_and_carries_its_bucket_and_prefix() -> None:
    source = f"s3://{BUCKET}/sets/big/"
    run = make_run("e", {"source": source, "training_instance_count": 2})
    assert (run.source_kind, run.source_bucket, run.source_prefix) == (
        "sharded",
        BUCKET,
        "sets/big/",
    )
    assert run.training_instance_count == 2
    again = RunSpec.from_dict(run.to_dict())
    assert again == run


def test_an_object_source_stays_the_pickle_path_with_one_instance() -> None:
    run = make_run("e", {"source": "s3://my-bucket/data/mnist.pkl.gz"})
    assert (run.source_kind, run.source_prefix, run.training_instance_count) == ("pickle", "", 1)
