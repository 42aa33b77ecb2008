"""What `--help` says is true: every `--json` says what it prints, and `train --learning-rate`'s help agrees with its
default (it said "none: 1e-3 from scratch, 1e-4 for the head" beside a default of 0.001, which the head gets too)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from leafdoc.cli.main import app


def help_of(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").split())


@pytest.mark.parametrize("command", [("predict",), ("advice",), ("calibrate",), ("ingest",), ("models", "list")])
def test_every_json_option_says_what_it_prints(command):
    said = help_of(*command)
    assert re.search(r"--json Print ", said), said  # a description follows the option's name


def test_the_learning_rates_help_agrees_with_its_default():
    from leafdoc.train.config import TrainConfig

    said = help_of("train")
    rate = said[said.index("--learning-rate") :][:400]
    assert TrainConfig().learning_rate == 1e-3 and TrainConfig().base_learning_rate == 1e-3
    assert TrainConfig(weights="none").base_learning_rate == 1e-3  # from scratch too
    assert "1e-3 for both by default" in rate and "[default: 0.001]" in rate, rate
    assert "none: 1e-3" not in rate
