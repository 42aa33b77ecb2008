"""Which checkpoints a run continues (train/checkpoint.py): the same settings and split; settings a later leafdoc added,
at their defaults, do not count (a run stopped before an upgrade continues after it); anything else starts over,
saying which settings differ."""

from __future__ import annotations

import json

import numpy as np

from leafdoc.train.checkpoint import STATE, VERSION, Checkpoint, fingerprint, split_key
from leafdoc.train.config import TrainConfig


class Data:
    """What fingerprint reads of a training's data: the classes, and each part's photos and labels."""

    def __init__(self, shas: list[str], y: list[int]):
        self.classes = ["a", "b"]
        self.shas, self.y = shas, np.asarray(y)

    def indices(self, part: str) -> np.ndarray:
        return np.arange(len(self.shas)) if part == "train" else np.arange(1)


def saved(folder, cfg, data, drop=(), **changed) -> None:
    """A checkpoint's state.json as a leafdoc that lacked the settings `drop` wrote it, with `changed` settings."""
    settings = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in drop} | changed
    folder.mkdir(parents=True, exist_ok=True)
    state = {"version": VERSION, "key": "from-an-older-leafdoc", "phase": "fine_tune", "epoch": 20}
    (folder / STATE).write_text(json.dumps(state | {"settings": settings, "split": split_key(data)}))


CFG = TrainConfig(weights="none", backbone="baseline_cnn", image_size=16, epochs=4)
DATA = Data(["0" * 64, "1" * 64, "2" * 64], [0, 1, 1])
NEW = ("teacher", "teacher_weight", "teacher_temperature")  # added in session 64, after runs were checkpointed


def test_a_checkpoint_from_before_settings_were_added_is_continued_while_they_are_at_their_defaults(tmp_path):
    """Session 65: a 224 px run checkpointed before the teacher's settings were added was started over on resume,
    an hour lost, though nothing it trained with had changed."""
    saved(tmp_path, CFG, DATA, drop=NEW)
    ck = Checkpoint(tmp_path, fingerprint(CFG, DATA), CFG, DATA)
    assert ck.ignored is None and ck.state["epoch"] == 20

    taught = CFG.model_copy(update={"teacher_weight": 0.5})  # an added setting, not at its default: not the same run
    ck = Checkpoint(tmp_path, fingerprint(taught, DATA), taught, DATA)
    assert ck.state is None
    assert ck.ignored == f"{tmp_path} was saved with other settings (teacher_weight: (none) -> 0.5)"


def test_a_checkpoint_of_other_settings_or_another_split_starts_over_saying_which(tmp_path):
    saved(tmp_path, CFG, DATA, epochs=3, image_size=32)
    ck = Checkpoint(tmp_path, fingerprint(CFG, DATA), CFG, DATA)
    assert ck.state is None
    assert ck.ignored == f"{tmp_path} was saved with other settings (epochs: 3 -> 4; image_size: 32 -> 16)"

    saved(tmp_path, CFG, DATA)
    relabelled = Data(DATA.shas, [0, 1, 0])
    ck = Checkpoint(tmp_path, fingerprint(CFG, relabelled), CFG, relabelled)
    assert ck.state is None and ck.ignored == f"{tmp_path} was saved on another split (other classes or photos)"
    assert Checkpoint(tmp_path, fingerprint(CFG, DATA), CFG, DATA).state is not None  # the same: continued

    # A checkpoint from before state.json kept its settings: only its key can say, and it differs.
    state = json.loads((tmp_path / STATE).read_text())
    (tmp_path / STATE).write_text(json.dumps({k: v for k, v in state.items() if k not in ("settings", "split")}))
    ck = Checkpoint(tmp_path, fingerprint(CFG, DATA), CFG, DATA)
    assert ck.state is None and ck.ignored == f"{tmp_path} was saved with other settings or another split"
