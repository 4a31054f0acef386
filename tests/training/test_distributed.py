"""Multi-instance training: ShardedByS3Key shares, data-parallel workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import BASE_HP, D, make_data, write_channel

from pipeline_core.recordio import write_dense
from training.distributed import (
    DistributedTrainingError,
    load_share,
    sharded_by_s3_key,
    train_distributed,
)
from training.hyperparameters import parse_hyperparameters
from training.metrics import binary_metrics
from training.model import LinearModel
from training.trainer import train
from training.tuner import TuningJob

HP = {**BASE_HP, "num_models": "1", "epochs": "4"}


def test_sharded_by_s3_key_deals_keys_round_robin_in_listing_order():
    keys = [f"data/train/part-{i:05d}.rec" for i in range(7)]
    shares = sharded_by_s3_key(keys, 3)
    assert shares == [
        ["data/train/part-00000.rec", "data/train/part-00003.rec", "data/train/part-00006.rec"],
        ["data/train/part-00001.rec", "data/train/part-00004.rec"],
        ["data/train/part-00002.rec", "data/train/part-00005.rec"],
    ]
    assert sharded_by_s3_key(keys, 1) == [keys]


def test_fewer_objects_than_instances_is_refused():
    with pytest.raises(DistributedTrainingError, match="2 objects for 3 instances"):
        sharded_by_s3_key(["a", "b"], 3)


def test_workers_read_disjoint_shares_that_cover_the_channel(tmp_path):
    x, y = make_data(900, 5)
    x[:, 0] = np.arange(900)  # a row id
    files = sorted(write_channel(tmp_path / "train", x, y, parts=5).iterdir())
    seen = [load_share(share, feature_dim=D)[0][:, 0] for share in sharded_by_s3_key(files, 2)]
    ids = [set(s.astype(int).tolist()) for s in seen]
    assert ids[0].isdisjoint(ids[1])
    assert ids[0] | ids[1] == set(range(900))
    assert {len(i) for i in ids} == {540, 360}  # 3 and 2 of the 5 objects


def _test_f1(model: LinearModel, x: np.ndarray, y: np.ndarray) -> float:
    z = ((x - model.mean) / model.std) @ model.weights + model.bias
    return binary_metrics(y, z.astype(np.float32), model.threshold, 1.0).binary_f_beta


def test_two_workers_train_as_well_as_one(channels, data):
    """Mean test F1 over 3 seeds: 2 data-parallel workers within 0.01 of 1."""
    full = {**HP, "epochs": "15"}  # trained to convergence, not cut short
    hp = parse_hyperparameters(full)
    tx, ty = data["test"]
    one, two = [], []
    for seed in range(3):
        single = train(*data["train"], hp, validation=data["validation"], seed=seed)
        one.append(_test_f1(single.model, tx, ty))
        multi = train_distributed(channels, full, 2, seed=seed)
        two.append(_test_f1(multi.model, tx, ty))
        assert multi.model.training["train_rows"] == data["train"][0].shape[0]
    assert abs(np.mean(two) - np.mean(one)) < 0.01, (one, two)
    assert np.mean(two) > 0.9


def test_a_failing_worker_fails_the_job_by_host(tmp_path, data):
    root = write_channel(tmp_path / "train", *data["train"], parts=2)
    (root / "part-1.rec").write_bytes(b"not recordio")
    with pytest.raises(DistributedTrainingError, match="algo-2"):
        train_distributed({"train": root}, HP, 2)


def test_a_tuning_job_with_instance_count_2_trains_on_two_hosts(channels, tmp_path):
    request = {
        "HyperParameterTuningJobName": "tune-two-hosts",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random",
            "RandomSeed": 3,
            "HyperParameterTuningJobObjective": {
                "Type": "Maximize",
                "MetricName": "validation:binary_f_beta",
            },
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 1, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": {
                "ContinuousParameterRanges": [
                    {"Name": "wd", "MinValue": "1e-6", "MaxValue": "1e-3", "ScalingType": "Auto"}
                ]
            },
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {k: v for k, v in HP.items() if k != "num_models"},
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {"S3DataSource": {"S3DataDistributionType": "ShardedByS3Key"}},
                },
                {
                    "ChannelName": "validation",
                    "DataSource": {"S3DataSource": {"S3DataDistributionType": "FullyReplicated"}},
                },
            ],
            "ResourceConfig": {"InstanceCount": 2},
        },
    }
    job = TuningJob(request, channels, tmp_path)
    described = job.run()
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    name = described["BestTrainingJob"]["TrainingJobName"]
    model = LinearModel.load(job.artifact(name))
    assert model.training["instance_count"] == 2
    log = Path(tmp_path / name / "training.log").read_text()
    assert "host=algo-1 reads 1 of 2 train objects" in log
    assert "host=algo-2 reads 1 of 2 train objects" in log


def test_single_file_channel_cannot_feed_two_instances(tmp_path, data):
    path = tmp_path / "train.rec"
    with open(path, "wb") as f:
        write_dense(f, *data["train"])
    with pytest.raises(DistributedTrainingError, match="1 objects for 2 instances"):
        train_distributed({"train": path}, HP, 2)
