"""An experiment report names its recipe file relative to where it was run, not by one machine's absolute path."""

from pathlib import Path

from leafdoc.experiments.records import shown_path


def test_a_recipe_under_the_working_directory_is_shown_relative(tmp_path, monkeypatch):
    recipe = tmp_path / "recipes" / "flowers.yaml"
    recipe.parent.mkdir()
    recipe.write_text("name: flowers\n")
    monkeypatch.chdir(tmp_path)
    assert shown_path(recipe) == str(Path("recipes") / "flowers.yaml")
    assert shown_path(Path("recipes/flowers.yaml")) == str(Path("recipes") / "flowers.yaml")


def test_a_recipe_elsewhere_keeps_its_path(tmp_path, monkeypatch):
    elsewhere = tmp_path / "mine" / "r.yaml"
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert shown_path(elsewhere) == str(elsewhere)
