"""Multi-device training: `distribute` (TrainConfig, `leafdoc train --distribute`) picks the
tf.distribute strategy, and the card says which one trained the model. This machine has no GPU, so:
`auto` and `none` must pick the default (one-device) strategy; `mirrored` forced on the CPU must train a
model that serves; and MirroredStrategy with two replicas (the CPU split into two logical devices, the
way TensorFlow's documentation stands in for two GPUs) must train too, even on splits that do not
divide evenly between the replicas."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import TINY_CNN_CLI

from leafdoc.train.config import TrainConfig


def test_distribute_defaults_to_auto_and_refuses_unknown_values():
    assert TrainConfig().distribute == "auto"
    for mode in ("auto", "mirrored", "none"):
        assert TrainConfig(distribute=mode).distribute == mode
    with pytest.raises(ValueError):
        TrainConfig(distribute="tpu")


def test_auto_and_none_use_the_default_strategy_without_several_gpus():
    import tensorflow as tf

    from leafdoc.train.trainer import describe_strategy, make_strategy, split_for_replicas

    assert len(tf.config.list_logical_devices("GPU")) <= 1, "this test is for machines with 0 or 1 GPU"
    for mode in ("auto", "none"):
        strategy = make_strategy(mode)
        assert strategy is tf.distribute.get_strategy()  # the default strategy: no replicas, no mirroring
        record = describe_strategy(strategy, mode)
        assert record["requested"] == mode and record["strategy"] == "default" and record["replicas"] == 1
    # One replica: every image, the batch size asked for.
    kept, batch = split_for_replicas(np.arange(7), 32, "validation", seed=0)
    assert kept.tolist() == list(range(7)) and batch == 32
    mirrored = make_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    devices = describe_strategy(mirrored, "mirrored")["devices"]
    expected = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    assert [d.rsplit("/", 1)[-1] for d in devices] == [d.name.rsplit("/", 1)[-1] for d in expected]


def _leafdoc_train(tmp_path: Path, leaf_folder: Path, out: Path, mode: str, logical_cpus: int = 1, args=TINY_CNN_CLI):
    """`leafdoc train ... --distribute MODE` in a fresh process (TensorFlow's devices are fixed at start); by default
    the 4-block CNN: the strategy, not the network, is what these tests are about."""
    code = textwrap.dedent(
        f"""
        import sys
        import tensorflow as tf
        if {logical_cpus} > 1:
            [cpu] = tf.config.list_physical_devices("CPU")
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * {logical_cpus})
        from leafdoc.cli.main import main
        sys.argv = ["leafdoc", *sys.argv[1:]]
        main()
        """
    )
    args = ["train", "--data", str(leaf_folder), "--out", str(out), *args, "--distribute", mode, "--json"]
    env = {**os.environ, "LEAFDOC_HOME": str(tmp_path / "home")}
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def _serves(model_dir: Path, leaf_folder: Path) -> None:
    photo = next((leaf_folder / "Apple___healthy").iterdir())
    exe = Path(sys.executable).with_name("leafdoc")
    run = subprocess.run([str(exe), "predict", str(model_dir), str(photo), "--json"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    [answer] = json.loads(run.stdout)
    assert "error" not in answer and len(answer["top_k"]) == 3


def test_mirrored_forced_on_the_cpu_trains_a_model_that_serves(tmp_path, leaf_folder):
    card = _leafdoc_train(tmp_path, leaf_folder, tmp_path / "model", "mirrored")
    s = card["training"]["strategy"]
    assert card["training"]["distribute"] == "mirrored"
    assert s["strategy"] == "MirroredStrategy" and s["replicas"] == 1 and s["devices"][0].endswith("CPU:0")
    assert json.loads((tmp_path / "model" / "card.json").read_text())["training"]["strategy"] == s
    [epoch] = card["history"]
    assert epoch["loss"] > 0 and 0 <= epoch["val_accuracy"] <= 1
    _serves(tmp_path / "model", leaf_folder)


def test_mirrored_on_two_replicas_trains_a_model_that_serves(tmp_path, leaf_folder):
    card = _leafdoc_train(tmp_path, leaf_folder, tmp_path / "model", "mirrored", logical_cpus=2)
    s = card["training"]["strategy"]
    assert s["strategy"] == "MirroredStrategy" and s["replicas"] == 2
    assert [d.rsplit("/", 1)[-1] for d in s["devices"]] == ["device:CPU:0", "device:CPU:1"]
    [epoch] = card["history"]
    assert epoch["loss"] > 0
    # Every replica batch holds at least one image: the 3 validation images are scored as 2 (an even split).
    assert card["dataset"]["split"]["val"] == 3 and epoch["val_accuracy"] in (0.0, 0.5, 1.0)
    _serves(tmp_path / "model", leaf_folder)


def test_mirrored_on_two_replicas_learns_a_separable_task(tmp_path):
    """Two replicas whose gradients are combined wrongly (summed twice, or one replica's dropped) would still
    train without error: the model must learn three colours under noise as one device does (test >= 0.9)."""
    from tests.conftest import COLOURS, colour_folder

    from leafdoc.inference.predictor import Predictor

    args = ["--backbone", "baseline_cnn", "--weights", "none", "--image-size", "32", "--epochs", "12"]
    args += ["--patience", "12", "--batch-size", "8"]
    card = _leafdoc_train(tmp_path, colour_folder(tmp_path / "colours", 14), tmp_path / "model", "mirrored", 2, args)
    assert card["training"]["strategy"]["replicas"] == 2
    assert card["metrics"]["test"]["accuracy"] >= 0.9, card["metrics"]["test"]
    fresh = colour_folder(tmp_path / "fresh", 10, seed0=500)
    predictor = Predictor(tmp_path / "model")
    x = np.stack([predictor.preprocess(fresh / c / f"{c}{i}.png") for c in COLOURS for i in range(10)])
    predicted = np.array(predictor.labels)[predictor.predict_arrays(x)["probabilities"].argmax(axis=1)]
    assert np.mean(predicted == np.repeat(list(COLOURS), 10)) >= 0.9, predicted.tolist()
