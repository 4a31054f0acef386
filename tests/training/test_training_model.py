from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest

from training.errors import ModelArtifactError
from training.model import LinearModel


def model(dim: int = 4) -> LinearModel:
    rng = np.random.default_rng(0)
    return LinearModel(
        weights=rng.normal(size=dim).astype(np.float32),
        bias=-0.25,
        mean=rng.normal(size=dim).astype(np.float32),
        std=rng.uniform(0.5, 2, size=dim).astype(np.float32),
        threshold=0.42,
        hyperparameters={"predictor_type": "binary_classifier"},
        metrics={"validation:binary_f_beta": 0.9},
    )


def tarball(payload: bytes, name: str = "model.json") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def test_round_trip_is_exact(tmp_path):
    m = model()
    path = m.save(tmp_path / "model.tar.gz")
    loaded = LinearModel.load(path)
    assert np.array_equal(loaded.weights, m.weights) and np.array_equal(loaded.std, m.std)
    assert loaded.threshold == m.threshold and loaded.bias == m.bias
    assert loaded.metrics == m.metrics and loaded.hyperparameters == m.hyperparameters
    x = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    assert np.array_equal(loaded.predict(x)[0], m.predict(x)[0])
    assert m.to_bytes() == loaded.to_bytes()  # deterministic artifact


def test_prediction_matches_the_documented_formula():
    m = model()
    x = np.random.default_rng(2).normal(size=(20, 4)).astype(np.float32)
    z = ((x - m.mean) / m.std) @ m.weights.astype(np.float64) + m.bias
    expected = 1 / (1 + np.exp(-z))
    scores, labels = m.predict(x)
    assert np.allclose(scores, expected, atol=1e-5)
    assert np.array_equal(labels, (scores >= np.float32(m.threshold)).astype(np.int8))


def test_wrong_feature_count_is_a_value_error():
    with pytest.raises(ValueError, match="4 features"):
        model().predict(np.zeros((2, 3), dtype=np.float32))


def _doc() -> dict:
    return model().to_dict()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(version=2), "version"),
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.update(weights=d["weights"][:-1]), "weights has 3 values"),
        (lambda d: d["scaler"].update(std=[1.0, 0.0, 1.0, 1.0]), "std must be positive"),
        (lambda d: d["weights"].__setitem__(0, float("nan")), "non-finite"),
        (lambda d: d.update(threshold="0.5"), "threshold must be a number"),
        (lambda d: d.update(feature_dim=0), "feature_dim"),
        (lambda d: d.update(hyperparameters={"epochs": 3}), "hyperparameters"),
        (lambda d: d.pop("scaler"), "scaler"),
    ],
)
def test_invalid_model_json_is_rejected(mutate, message):
    doc = _doc()
    mutate(doc)
    with pytest.raises(ModelArtifactError, match=message):
        LinearModel.from_bytes(tarball(json.dumps(doc).encode()))


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"definitely not gzip", "not a readable model.tar.gz"),
        (tarball(b"{}", name="other.json"), "has no model.json"),
        (tarball(b"{not json"), "not valid JSON"),
        (tarball(b"[]"), "JSON object"),
        (model().to_bytes()[:40], "not a readable"),
    ],
    # Stable ids: a gzip header carries its mtime, so bytes would make the id
    # differ between the workers that collect the suite.
    ids=["not-gzip", "no-model-json", "bad-json", "not-an-object", "truncated"],
)
def test_corrupt_artifacts_raise_a_named_error(blob, message):
    with pytest.raises(ModelArtifactError, match=message):
        LinearModel.from_bytes(blob)


def test_missing_file_raises_a_named_error(tmp_path):
    with pytest.raises(ModelArtifactError, match="cannot read"):
        LinearModel.load(tmp_path / "nope.tar.gz")


def test_a_hinge_model_scores_with_its_decision_value_and_round_trips(tmp_path):
    base = model()
    m = LinearModel(
        weights=base.weights,
        bias=base.bias,
        mean=base.mean,
        std=base.std,
        threshold=-0.1,
        loss="hinge_loss",
    )
    x = np.random.default_rng(3).normal(size=(40, 4)).astype(np.float32)
    z = ((x - m.mean) / m.std) @ m.weights.astype(np.float64) + m.bias
    scores, labels = m.predict(x)
    assert np.allclose(scores, z, atol=1e-5)  # not squashed into (0, 1)
    assert (scores < 0).any()
    assert np.array_equal(labels, (scores >= np.float32(-0.1)).astype(np.int8))
    loaded = LinearModel.load(m.save(tmp_path / "model.tar.gz"))
    assert loaded.loss == "hinge_loss"
    assert np.array_equal(loaded.predict(x)[0], scores)


def test_an_artifact_without_a_loss_is_logistic_and_an_unknown_loss_is_rejected():
    doc = _doc()
    assert doc.pop("loss") == "logistic"
    assert LinearModel.from_bytes(tarball(json.dumps(doc).encode())).loss == "logistic"
    doc["loss"] = "squared_loss"
    with pytest.raises(ModelArtifactError, match="loss must be one of"):
        LinearModel.from_bytes(tarball(json.dumps(doc).encode()))


def test_a_hinge_score_that_overflows_is_refused_not_written_as_json():
    from training.errors import PayloadError
    from training.serving import invoke

    ones = np.ones(4, dtype=np.float32)
    m = LinearModel(
        weights=2 * ones, bias=0.0, mean=0 * ones, std=ones, threshold=0.0, loss="hinge_loss"
    )
    huge = b"3e38,3e38,3e38,3e38"  # finite float32 inputs, an infinite decision value
    with pytest.raises(PayloadError, match="row 0 is not finite"):
        invoke(m, huge, "text/csv", "application/json")
    ok, _ = invoke(m, b"1,2,3,4", "text/csv", "application/json")
    assert json.loads(ok)["predictions"][0]["predicted_label"] in (0, 1)
