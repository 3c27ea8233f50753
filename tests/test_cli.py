"""The `apcscale` command and the recipe catalog: shipped recipes by name, the user's own, copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from apcscale import cli
from apcscale.recipes import catalog
from apcscale.recipes.sweep import main as sweep_main
from apcscale.recipes.train import find_recipe
from apcscale.recipes.train import main as train_main
from apcscale.utils.schema import RecipeError

SHIPPED = {p.stem for p in catalog.PACKAGED.glob("*.yaml")}


@pytest.fixture(autouse=True)
def no_user_recipes(monkeypatch, tmp_path):
    """Every test starts in an empty folder with no $APCSCALE_RECIPES (only the shipped recipes)."""
    monkeypatch.delenv(catalog.ENV, raising=False)
    monkeypatch.chdir(tmp_path)


def test_the_package_ships_the_recipes():
    assert {"sweep_default", "sweep_librispeech_gpu", "train_lstm_fsdd", "train_transformer_fsdd"} <= SHIPPED
    assert [r.name for r in catalog.available()] == sorted(SHIPPED)
    assert all(r.origin == "shipped" and r.summary for r in catalog.available())
    assert find_recipe(None) == catalog.PACKAGED / "train_lstm_fsdd.yaml"  # the train default
    assert find_recipe("sweep_default", prefix="sweep_") == catalog.PACKAGED / "sweep_default.yaml"
    assert find_recipe("sweep_default.yaml") == catalog.PACKAGED / "sweep_default.yaml"


def listed(out: str) -> list[str]:
    """The recipe names in `recipes list` output (its rows start with the name; notes start otherwise)."""
    return [line.split()[0] for line in out.splitlines() if line.startswith(("sweep_", "train_"))]


def test_recipes_list_through_the_command(capsys):
    assert cli.main(["recipes", "list"]) == 0
    out = capsys.readouterr().out
    assert listed(out) == sorted(SHIPPED)
    assert "LSTM APC on FSDD" in out and str(catalog.PACKAGED) in out
    assert cli.main(["recipes", "list", "--kind", "train"]) == 0
    assert listed(capsys.readouterr().out) == sorted(n for n in SHIPPED if n.startswith("train_"))


def test_user_folders_add_recipes_and_replace_shipped_ones(tmp_path, monkeypatch, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "sweep_mystudy.yaml").write_text("# my study on my corpus\nname: mystudy\n")
    (mine / "train_lstm_fsdd.yaml").write_text("# my own LSTM\nname: mine\n")
    local = tmp_path / "recipes"  # ./recipes of the current folder
    local.mkdir()
    (local / "train_local.yaml").write_text("# from ./recipes\nname: local\n")
    (local / "sweep_mystudy.yaml").write_text("# shadowed by $APCSCALE_RECIPES\n")
    monkeypatch.setenv(catalog.ENV, str(mine))

    assert find_recipe("sweep_mystudy", prefix="sweep_") == mine / "sweep_mystudy.yaml"
    assert find_recipe("train_local") == Path("recipes") / "train_local.yaml"
    assert find_recipe(None) == mine / "train_lstm_fsdd.yaml"  # the user's copy of the default is used
    found = {r.name: r for r in catalog.available()}
    assert set(found) == SHIPPED | {"sweep_mystudy", "train_local"}
    assert found["train_lstm_fsdd"].shadows and found["train_lstm_fsdd"].origin == f"${catalog.ENV}"
    assert found["sweep_mystudy"].summary == "my study on my corpus" and not found["sweep_mystudy"].shadows
    assert found["sweep_default"].origin == "shipped"

    # the old entry points' --list shows them too, and says where a user recipe lies
    assert sweep_main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "sweep_mystudy" in out and str(mine / "sweep_mystudy.yaml") in out and "sweep_default" in out
    assert train_main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "replaces the shipped one" in out and "train_local" in out


def test_recipes_cp_copies_and_never_overwrites_unasked(tmp_path, capsys):
    assert cli.main(["recipes", "cp", "sweep_default", "study.yaml"]) == 0
    assert (tmp_path / "study.yaml").read_bytes() == (catalog.PACKAGED / "sweep_default.yaml").read_bytes()
    assert capsys.readouterr().out.strip() == "study.yaml"
    (tmp_path / "study.yaml").write_text("# edited\n")
    assert cli.main(["recipes", "cp", "sweep_default", "study.yaml"]) == 2
    assert "study.yaml already exists" in capsys.readouterr().err
    assert (tmp_path / "study.yaml").read_text() == "# edited\n"  # untouched
    assert cli.main(["recipes", "cp", "sweep_default", "study.yaml", "--force"]) == 0
    assert (tmp_path / "study.yaml").read_bytes() == (catalog.PACKAGED / "sweep_default.yaml").read_bytes()
    (tmp_path / "into").mkdir()
    assert cli.main(["recipes", "cp", "train_transformer_fsdd", "into"]) == 0
    assert (tmp_path / "into" / "train_transformer_fsdd.yaml").is_file()
    assert cli.main(["recipes", "cp", "sweep_nonesuch", "x.yaml"]) == 2
    err = capsys.readouterr().err
    assert "sweep_nonesuch: no such recipe" in err and "sweep_default" in err
    assert not (tmp_path / "x.yaml").exists()


def test_unknown_recipe_names_the_known_ones():
    with pytest.raises(
        RecipeError,
        match=r"sweep_defualt: no such recipe file or name \(the sweep_\* recipes: "
        r"sweep_default, sweep_librispeech_gpu",
    ):
        find_recipe("sweep_defualt", prefix="sweep_")


def test_the_command_dispatches_to_the_entry_points(capsys):
    assert cli.main(["sweep", "--list"]) == 0
    via_command = capsys.readouterr().out
    assert sweep_main(["--list"]) == 0
    assert capsys.readouterr().out == via_command and "sweep_default" in via_command
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in cli.COMMANDS)
    assert cli.main([]) == 2
    assert cli.main(["swep"]) == 2
    assert "unknown command 'swep' (did you mean 'sweep'?)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse of the entry point, reached through the command
        cli.main(["fit", "--no-such-flag"])
    assert exc.value.code == 2
    assert cli.main(["train", "train_nonesuch"]) == 2
    assert "train_nonesuch: no such recipe" in capsys.readouterr().err
