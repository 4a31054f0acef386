from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import BASE_HP, TRUE_B, TRUE_W, D

from training.errors import DataChannelError, HyperparameterError
from training.hyperparameters import parse_hyperparameters
from training.metric_definitions import parse_metrics
from training.model import LinearModel
from training.trainer import MetricEvent, ProgressEvent, model_settings, run_training_job, train

NAMES = {
    "train:objective_loss",
    "validation:binary_f_beta",
    "validation:binary_classification_accuracy",
    "validation:precision",
    "validation:recall",
    "validation:roc_auc_score",
    "validation:objective_loss",
}


def fit(data, validation=True, **extra: str):
    hp = parse_hyperparameters({**BASE_HP, **extra})
    events: list = []
    result = train(
        *data["train"],
        hp,
        validation=data["validation"] if validation else None,
        on_event=events.append,
        raw_hyperparameters={**BASE_HP, **extra},
    )
    return result, events


@pytest.fixture(scope="module")
def default_fit(data):
    return fit(data, epochs="15")


def test_learns_the_known_separator(default_fit, data):
    from sklearn import metrics as skm
    from sklearn.linear_model import LogisticRegression

    result, _ = default_fit
    x, y = data["test"]
    _, labels = result.model.predict(x)
    reference = LogisticRegression().fit(*data["train"]).score(x, y)
    assert skm.accuracy_score(y, labels) >= reference - 0.01
    bayes = skm.accuracy_score(y, (x @ TRUE_W + TRUE_B) > 0)
    assert skm.accuracy_score(y, labels) >= bayes - 0.02
    w_raw = result.model.weights / result.model.std  # back in the input space
    informative = [0, 1, 2, 5, 8]
    cosine = np.dot(w_raw[informative], TRUE_W[informative]) / (
        np.linalg.norm(w_raw[informative]) * np.linalg.norm(TRUE_W[informative])
    )
    assert cosine > 0.95


def test_final_metrics_match_an_independent_computation(default_fit, data):
    from sklearn import metrics as skm

    result, _ = default_fit
    x, y = data["validation"]
    scores, labels = result.model.predict(x)
    m = result.metrics
    assert m["validation:binary_classification_accuracy"] == pytest.approx(
        skm.accuracy_score(y, labels)
    )
    assert m["validation:precision"] == pytest.approx(skm.precision_score(y, labels))
    assert m["validation:recall"] == pytest.approx(skm.recall_score(y, labels))
    assert m["validation:binary_f_beta"] == pytest.approx(skm.f1_score(y, labels))
    assert m["validation:roc_auc_score"] == pytest.approx(skm.roc_auc_score(y, scores), abs=1e-6)
    assert m["validation:objective_loss"] == pytest.approx(
        skm.log_loss(y, scores.astype(np.float64)), rel=1e-3
    )
    assert set(m) == NAMES
    assert result.model.metrics == m


def test_threshold_is_calibrated_for_accuracy_on_validation(default_fit, data):
    from sklearn import metrics as skm

    result, _ = default_fit
    x, y = data["validation"]
    scores, _ = result.model.predict(x)
    acc = skm.accuracy_score(y, scores >= np.float32(result.model.threshold))
    best = max(skm.accuracy_score(y, scores >= t) for t in np.unique(scores))
    assert acc == pytest.approx(best, abs=1.5e-3)  # float rounding between train and serve paths


def test_emits_every_metric_per_epoch_and_final_with_progress(default_fit):
    result, events = default_fit
    metrics = [e for e in events if isinstance(e, MetricEvent)]
    progress = [e for e in events if isinstance(e, ProgressEvent)]
    for epoch in range(1, result.epochs_run + 1):
        assert {e.name for e in metrics if e.epoch == epoch} == NAMES
    assert {e.name: e.value for e in metrics if e.epoch is None} == result.metrics
    assert [p.epoch for p in progress] == list(range(1, result.epochs_run + 1))
    assert all(p.rows == 3000 and p.rows_per_second > 0 for p in progress)


def test_logs_sagemaker_style_metric_lines(data, caplog):
    with caplog.at_level(logging.INFO, logger="training"):
        fit(data, epochs="2", num_models="1")
    lines = caplog.messages
    assert any(
        line.startswith("#quality_metric: host=algo-1, epoch=1, validation binary_f_1.000 <score>=")
        for line in lines
    )
    # Every final metric parses with the algorithm's own MetricDefinitions regexes.
    parsed = parse_metrics(lines)
    assert parsed["train:objective_loss"] > 0  # per epoch
    assert parsed["train:objective_loss:final"] > 0
    for key in ("binary_f_beta", "binary_classification_accuracy", "precision", "recall"):
        assert 0 <= parsed[f"validation:{key}"] <= 1
    assert parsed["validation:objective_loss:final"] > 0
    assert any("rows/s" in line for line in lines)


def test_early_stopping_stops_before_the_last_epoch(data):
    # a relative tolerance of 100% means no epoch after the first counts as an improvement
    result, _ = fit(data, epochs="20", early_stopping_patience="2", early_stopping_tolerance="1.0")
    assert result.stopped_early and result.epochs_run == 3


def test_without_early_stopping_runs_every_epoch(data):
    result, _ = fit(data, epochs="4", num_models="1", early_stopping_patience="10")
    assert not result.stopped_early and result.epochs_run == 4


def test_auto_num_models_trains_a_grid_and_keeps_one(default_fit):
    result, _ = default_fit
    assert result.model.training["num_models"] == 9
    assert 0 <= result.model.training["selected_model"] < 9


def test_model_settings_resolution():
    hp = parse_hyperparameters({**BASE_HP, "learning_rate": "0.1"})
    s = model_settings(hp, 10, 30)
    assert np.allclose(s.learning_rate, 0.1) and s.count == 3
    hp = parse_hyperparameters({**BASE_HP, "positive_example_weight_mult": "auto"})
    s = model_settings(hp, 10, 30)
    assert s.count == 18 and set(s.positive_weight.tolist()) == {1.0, 3.0}
    hp = parse_hyperparameters(
        {**BASE_HP, "positive_example_weight_mult": "balanced", "num_models": "1"}
    )
    s = model_settings(hp, 10, 30)
    assert s.count == 1 and s.positive_weight.tolist() == [3.0] and s.wd.tolist() == [0.0]
    hp = parse_hyperparameters({**BASE_HP, "num_models": "4"})
    assert model_settings(hp, 10, 30).count == 4


@pytest.mark.parametrize(
    "criterion",
    ["f_beta", "precision_at_target_recall", "recall_at_target_precision", "loss_function"],
)
def test_selection_criteria_calibrate_their_target(data, criterion):
    result, _ = fit(
        data,
        epochs="10",
        binary_classifier_model_selection_criteria=criterion,
        target_recall="0.97",
        target_precision="0.97",
    )
    m = result.metrics
    if criterion == "precision_at_target_recall":
        assert m["validation:recall"] >= 0.97
    elif criterion == "recall_at_target_precision":
        assert m["validation:precision"] >= 0.97
    elif criterion == "loss_function":
        assert result.model.threshold == 0.5
    assert m["validation:binary_classification_accuracy"] > 0.9


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop"])
def test_other_optimizers_learn(data, optimizer):
    result, _ = fit(data, epochs="5", optimizer=optimizer, momentum="0.9")
    assert result.metrics["validation:binary_classification_accuracy"] > 0.93


def test_l1_gives_exact_zeros_on_irrelevant_features(data):
    result, _ = fit(data, epochs="6", num_models="1", l1="0.02", learning_rate="0.02")
    w = result.model.weights
    assert np.count_nonzero(w[[3, 4, 7, 9]] == 0) >= 2
    assert np.all(w[[0, 1, 2]] != 0)


def test_no_bias_and_normal_init_and_no_normalisation(data):
    result, _ = fit(
        data, epochs="3", use_bias="false", init_method="normal", normalize_data="false"
    )
    assert result.model.bias == 0.0
    assert np.all(result.model.std == 1) and np.all(result.model.mean == 0)


def test_constant_feature_gets_unit_std(default_fit):
    result, _ = default_fit
    assert result.model.std[6] == 1.0 and np.isfinite(result.model.weights).all()


def test_without_validation_selects_on_training_data(data):
    result, _ = fit(data, validation=False, epochs="2")
    assert "train:binary_classification_accuracy" in result.metrics


def test_training_is_deterministic(data):
    a, _ = fit(data, epochs="2")
    b, _ = fit(data, epochs="2")
    assert np.array_equal(a.model.weights, b.model.weights) and a.metrics == b.metrics


def test_feature_dim_mismatch_names_feature_dim(data):
    with pytest.raises(HyperparameterError, match="'feature_dim'"):
        fit(data, feature_dim=str(D + 1))


def test_non_binary_labels_are_rejected(data):
    x, y = data["train"]
    hp = parse_hyperparameters(BASE_HP)
    with pytest.raises(DataChannelError, match="0 or 1"):
        train(x, y * 2, hp)


def test_run_training_job_reads_channels_and_writes_the_artifact(channels, data, tmp_path):
    result = run_training_job(channels, {**BASE_HP, "epochs": "3"}, tmp_path / "out")
    path = tmp_path / "out" / "model.tar.gz"
    model = LinearModel.load(path)
    x, _ = data["test"]
    assert np.array_equal(model.predict(x)[1], result.model.predict(x)[1])
    assert model.hyperparameters["epochs"] == "3"


def test_run_training_job_rejects_missing_and_bad_channels(channels, tmp_path):
    with pytest.raises(DataChannelError, match="train channel is required"):
        run_training_job({"validation": channels["validation"]}, BASE_HP, tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.rec").write_bytes(b"not recordio")
    with pytest.raises(DataChannelError, match="train channel"):
        run_training_job({"train": bad}, BASE_HP, tmp_path)
    with pytest.raises(DataChannelError, match="does not exist"):
        run_training_job({"train": tmp_path / "missing"}, BASE_HP, tmp_path)


def test_lr_schedule_decays_and_use_lr_scheduler_false_turns_it_off(data):
    common = {"epochs": "3", "num_models": "1", "learning_rate": "0.05"}
    constant, _ = fit(data, **common)
    decayed, _ = fit(data, **common, lr_scheduler_step="1", lr_scheduler_factor="0.5")
    switched_off, _ = fit(
        data,
        **common,
        lr_scheduler_step="1",
        lr_scheduler_factor="0.5",
        use_lr_scheduler="false",
    )
    # halving every update freezes the weights almost at once: far from the constant-rate fit
    assert not np.allclose(decayed.model.weights, constant.model.weights, atol=1e-3)
    np.testing.assert_array_equal(switched_off.model.weights, constant.model.weights)


@pytest.fixture(scope="module")
def hinge_fit(data):
    return fit(data, epochs="15", loss="hinge_loss")


def test_hinge_loss_trains_a_linear_svm(hinge_fit, data):
    from sklearn import metrics as skm
    from sklearn.svm import LinearSVC

    result, _ = hinge_fit
    x, y = data["test"]
    scores, labels = result.model.predict(x)
    reference = LinearSVC().fit(*data["train"]).score(x, y)
    assert skm.accuracy_score(y, labels) >= reference - 0.01
    # scores are SVM decision values: signed, unbounded, ranking like the labels
    assert (scores < 0).any() and (scores > 1).any()
    assert skm.roc_auc_score(y, scores) > 0.97
    assert result.model.loss == "hinge_loss"


def test_hinge_metrics_are_the_hinge_loss_and_metrics_at_the_calibrated_threshold(hinge_fit, data):
    from sklearn import metrics as skm

    result, _ = hinge_fit
    x, y = data["validation"]
    scores, labels = result.model.predict(x)
    hinge = np.maximum(0.0, 1.0 - (2.0 * y - 1.0) * scores.astype(np.float64)).mean()
    m = result.metrics
    assert m["validation:objective_loss"] == pytest.approx(hinge, rel=1e-3)
    assert m["validation:binary_classification_accuracy"] == pytest.approx(
        skm.accuracy_score(y, labels)
    )
    assert m["validation:roc_auc_score"] == pytest.approx(skm.roc_auc_score(y, scores), abs=1e-6)


def test_a_wider_margin_and_loss_function_selection_use_the_hinge_scale(data, caplog):
    with caplog.at_level(logging.INFO, logger="training"):
        wide, _ = fit(
            data,
            epochs="3",
            num_models="1",
            loss="hinge_loss",
            margin="4",
            binary_classifier_model_selection_criteria="loss_function",
        )
    assert wide.model.threshold == 0.0  # the hinge's neutral point, not P = 1/2
    narrow, _ = fit(data, epochs="3", num_models="1", loss="hinge_loss", margin="0.25")
    x, _ = data["validation"]
    # a wider margin pushes decision values further from 0
    assert np.abs(wide.model.predict(x)[0]).mean() > 2 * np.abs(narrow.model.predict(x)[0]).mean()
    assert any(" validation hinge_loss_objective <loss>=" in line for line in caplog.messages)
    assert parse_metrics(caplog.messages)["validation:objective_loss:final"] > 0
