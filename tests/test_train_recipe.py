"""Training recipes: every shipped recipe validates; mistakes fail before any work, naming the field."""

from pathlib import Path

import pytest

from apcscale.train.config import TrainRecipe, load_train_recipe
from apcscale.utils.schema import RecipeError

RECIPES = Path(__file__).resolve().parents[1] / "apcscale" / "recipes" / "configs"  # the shipped recipes


@pytest.mark.parametrize("path", sorted(RECIPES.glob("train_*.yaml")), ids=lambda p: p.stem)
def test_shipped_recipes_validate(path):
    recipe = load_train_recipe(path)
    assert isinstance(recipe, TrainRecipe)


def write(tmp_path, text):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ("model: {widht: 64}", r"r\.yaml: model\.widht: unknown field \(did you mean 'width'\?\)"),
        ("optim: {lr: fast}", r"optim\.lr: expected a number, got 'fast'"),
        ("budget: {frames: 10, steps: 5}", r"budget: set exactly one of frames, steps, epochs"),
        ("model: {arch: rnn}", r"model\.arch: expected one of 'lstm', 'gru', 'transformer'"),
        ("data: {batch_size: 0}", r"data\.batch_size: must be positive"),
        (
            "data: {batch_size: 32, batch_frames: 4096}",
            r"data\.batch_frames: give batch_size .* or batch_frames .*not both",
        ),
        (
            "data: {crop_frames: 256, batch_frames: 200}",
            r"data\.batch_frames: must hold at least one crop of crop_frames = 256",
        ),
        ("data: {batching: pack}", r"data\.batching: pack fills batches by frames: set batch_frames"),
        ("data: {batching: sorted}", r"data\.batching: expected one of 'bucket', 'pack', 'random'"),
        ("trainer: {precision: fp8}", r"trainer\.precision: must be one of"),
        ("modle: {}", r"modle: unknown field \(did you mean 'model'\?\)"),
        ("- a list", r"a recipe must be a mapping"),
    ],
)
def test_recipe_errors_name_the_field(tmp_path, text, message):
    with pytest.raises(RecipeError, match=message):
        load_train_recipe(write(tmp_path, text))


def test_overrides_are_validated_too(tmp_path):
    path = write(tmp_path, "model: {width: 64}")
    assert load_train_recipe(path, ["model.depth=5"]).model.depth == 5
    with pytest.raises(RecipeError, match=r"model\.depth: expected an integer"):
        load_train_recipe(path, ["model.depth=deep"])


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_train_recipe(tmp_path / "nope.yaml")
