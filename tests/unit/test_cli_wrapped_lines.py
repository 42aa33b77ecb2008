"""The CLI's wrapped warnings and notes (printed with `soft_wrap=False`) end their lines at their last character:
Rich kept the space it broke each line at, so every line but the last ended in a trailing space."""

from __future__ import annotations

from typer.testing import CliRunner

from leafdoc.cli import main as cli_main
from leafdoc.lifecycle import caveats


def test_train_prints_its_wrapped_lines_without_trailing_spaces(tmp_path, monkeypatch):
    """`leafdoc train`'s own output as a user sees it: the starter line before training, and the few-photos warning
    (printed the same way, from the same console) as the run prints it."""

    def fake_run(cfg, out_dir, **_):  # the real run trains a model; what it prints goes through the same console
        warning = caveats.few_photos({"Tomato___healthy": 22, "Tomato___Late_blight": 22})
        assert warning
        cli_main.console.print(f"[yellow]warning:[/] {cli_main.esc(warning)}", soft_wrap=False)
        return {}

    monkeypatch.setattr(cli_main, "run_training", fake_run)
    data = tmp_path / "mydata"
    data.mkdir()
    monkeypatch.setattr(cli_main.console, "_width", 60)
    result = CliRunner().invoke(cli_main.app, ["train", "--data", str(data), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    said = " ".join(line.strip() for line in lines)
    assert "Starting from the backbone of leafdoc's starter model" in said
    assert "warning: few photos: every class has 22 training photos." in said
    assert len(lines) >= 6, lines  # wrapped at 60 columns: several lines, each ending at a word
    assert all(len(line) <= 60 for line in lines), lines
    assert [line for line in lines if line != line.rstrip()] == []
