from __future__ import annotations

import pytest

from training.errors import HyperparameterError
from training.hyperparameters import SUPPORTED, parse_hyperparameters, to_strings


def parse(**extra: str):
    return parse_hyperparameters({"predictor_type": "binary_classifier", **extra})


def test_defaults_match_linear_learner_documentation():
    hp = parse()
    assert hp.epochs == 15
    assert hp.mini_batch_size == 1000
    assert hp.optimizer == "adam"
    assert hp.normalize_data is True and hp.use_bias is True
    assert hp.num_point_for_scaler == 10_000
    assert hp.early_stopping_patience == 3 and hp.early_stopping_tolerance == 0.001
    assert hp.binary_classifier_model_selection_criteria == "accuracy"
    assert hp.f_beta == 1.0 and hp.positive_example_weight_mult == 1.0
    assert hp.init_scale == 0.07
    assert hp.learning_rate is None and hp.wd is None and hp.num_models is None
    assert hp.use_lr_scheduler is True


def test_strings_are_parsed_to_typed_values():
    hp = parse(
        feature_dim="784",
        epochs="3",
        learning_rate="0.05",
        wd="auto",
        use_bias="False",
        optimizer="auto",
        positive_example_weight_mult="balanced",
        binary_classifier_model_selection_criteria="recall_at_target_precision",
        target_precision="0.9",
        _tuning_objective_metric="validation:binary_f_beta",
    )
    assert hp.feature_dim == 784 and hp.epochs == 3 and hp.learning_rate == 0.05
    assert hp.wd is None and hp.use_bias is False and hp.optimizer == "adam"
    assert hp.positive_example_weight_mult == "balanced"
    assert hp.binary_classifier_model_selection_criteria == "recall_at_target_precision"
    assert hp.tuning_objective_metric == "validation:binary_f_beta"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("epochs", "0"),
        ("epochs", "ten"),
        ("mini_batch_size", "1.5"),
        ("learning_rate", "-0.1"),
        ("learning_rate", "nan"),
        ("wd", "-1"),
        ("use_bias", "maybe"),
        ("optimizer", "lbfgs"),
        ("binary_classifier_model_selection_criteria", "auc"),
        ("target_recall", "1.5"),
        ("positive_example_weight_mult", "0"),
        ("use_lr_scheduler", "sometimes"),
        ("init_method", "xavier"),
        ("num_models", "0"),
        ("loss", "squared_loss"),
        ("loss", "softmax_loss"),
        ("normalize_label", "true"),
        ("num_classes", "2"),
        ("margin", "-1"),
        ("margin", "0"),
        ("normalize_data", "sometimes"),
        ("learning_rat", "0.1"),
    ],
)
def test_bad_values_raise_an_error_naming_the_parameter(name, value):
    with pytest.raises(HyperparameterError, match=f"'{name}'") as info:
        parse(**{name: value})
    assert info.value.name == name


@pytest.mark.parametrize("kind", ["regressor", "multiclass_classifier"])
def test_other_predictor_types_are_rejected_clearly(kind):
    with pytest.raises(HyperparameterError, match="only 'binary_classifier'"):
        parse_hyperparameters({"predictor_type": kind})


def test_predictor_type_is_required():
    with pytest.raises(HyperparameterError, match="predictor_type"):
        parse_hyperparameters({"epochs": "1"})


def test_values_must_be_strings_as_sagemaker_passes_them():
    with pytest.raises(HyperparameterError, match=r"'epochs'.*strings"):
        parse_hyperparameters({"predictor_type": "binary_classifier", "epochs": 3})  # type: ignore[dict-item]


def test_to_strings_converts_json_values():
    assert to_strings({"epochs": 3, "use_bias": False, "wd": 0.5}) == {
        "epochs": "3",
        "use_bias": "false",
        "wd": "0.5",
    }


def test_every_supported_name_parses_with_auto_or_a_valid_value():
    valid = {
        "predictor_type": "binary_classifier",
        "use_bias": "true",
        "normalize_data": "true",
        "init_method": "normal",
        "optimizer": "sgd",
        "binary_classifier_model_selection_criteria": "f_beta",
        "loss": "logistic",
        "_tuning_objective_metric": "validation:binary_f_beta",
        "_kvstore": "auto",
        "_num_gpus": "auto",
        "_num_kv_servers": "auto",
        "normalize_label": "auto",
        "init_bias": "0.1",
        "target_precision": "0.5",
        "target_recall": "0.5",
    }
    for name in sorted(SUPPORTED):
        value = valid.get(name, "1")
        if name in ("momentum", "beta_1", "beta_2", "lr_scheduler_factor"):
            value = "0.5"
        parse_hyperparameters({"predictor_type": "binary_classifier", name: value})


def test_documented_auto_values_and_ignored_for_binary_options_are_accepted():
    hp = parse(normalize_data="auto", unbias_data="auto", unbias_label="auto")
    assert hp.normalize_data is True and hp.unbias_data is None
    assert parse(unbias_data="false").unbias_data is False
    # documented as ignored for a binary classifier: accepted, checked, ignored
    ignored = parse(
        num_classes="10",
        accuracy_top_k="3",
        balance_multiclass_weights="true",
        huber_delta="1.0",
        quantile="0.5",
        loss_insensitivity="0.01",
    )
    assert ignored == parse()


def test_hinge_loss_and_its_margin_parse():
    assert parse().loss == "logistic" and parse(loss="auto").loss == "logistic"
    hp = parse(loss="hinge_loss", margin="0.5")
    assert (hp.loss, hp.margin) == ("hinge_loss", 0.5)
    assert parse(loss="hinge_loss").margin == 1.0  # the documented default
