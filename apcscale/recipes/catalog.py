"""The recipes: those shipped inside the package, and the user's own.

    apcscale recipes list                               # every recipe by name, with its first comment line
    apcscale recipes cp sweep_default my_study.yaml     # a copy to edit (as `tune cp` does)
    apcscale sweep my_study.yaml                        # a recipe file by path always works

A recipe is a YAML file. A name (`sweep_default`, or `sweep_default.yaml`) is looked up in, in order:

  1. the folders listed in $APCSCALE_RECIPES (separated by ':'),
  2. ./recipes, when the current folder has one,
  3. the recipes shipped with the package (apcscale/recipes/configs/).

So a user folder adds recipes, and one of its recipes named like a shipped one is used instead of
it (`recipes list` says which). Names start with the kind of recipe: sweep_* for
`apcscale sweep`, train_* for `apcscale train`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from apcscale.utils.schema import RecipeError

PACKAGED = Path(__file__).resolve().parent / "configs"
ENV = "APCSCALE_RECIPES"
SUFFIX = ".yaml"


@dataclass(frozen=True)
class RecipeFile:
    name: str  # the file's stem
    path: Path
    origin: str  # "shipped", or the user folder it comes from
    summary: str  # its first comment line
    shadows: bool = False  # a user recipe named like a shipped one (which it replaces)


def recipe_dirs() -> list[tuple[Path, str]]:
    """(folder, origin) in the order names are looked up: $APCSCALE_RECIPES, ./recipes, the package."""
    dirs: list[tuple[Path, str]] = []
    for part in os.environ.get(ENV, "").split(os.pathsep):
        if part.strip():
            dirs.append((Path(part).expanduser(), f"${ENV}"))
    local = Path("recipes")
    if local.is_dir():
        dirs.append((local, "./recipes"))
    dirs.append((PACKAGED, "shipped"))
    seen: set[Path] = set()
    out = []
    for folder, origin in dirs:
        key = folder.resolve()
        if key not in seen and folder.is_dir():
            seen.add(key)
            out.append((folder, origin))
    return out


def summary_of(path: Path) -> str:
    """A recipe's first comment line (what `recipes list` shows)."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return "(unreadable)"
    return next((ln.lstrip("# ").strip() for ln in lines if ln.startswith("#")), "")


def available(prefix: str = "") -> list[RecipeFile]:
    """The recipes found by name whose names start with `prefix`, sorted by name (the first folder wins)."""
    found: dict[str, RecipeFile] = {}
    shipped = {p.stem for p in PACKAGED.glob(f"*{SUFFIX}")}
    for folder, origin in recipe_dirs():
        for path in sorted(folder.glob(f"{prefix}*{SUFFIX}")):
            if path.is_file() and path.stem not in found:
                found[path.stem] = RecipeFile(
                    path.stem, path, origin, summary_of(path), shadows=origin != "shipped" and path.stem in shipped
                )
    return [found[name] for name in sorted(found)]


def find_recipe(name: str, prefix: str = "") -> Path:
    """A recipe by path, or by name ("sweep_default" or "sweep_default.yaml") in the recipe folders."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    stem = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
    if "/" not in stem and os.sep not in stem:
        for folder, _ in recipe_dirs():
            candidate = folder / f"{stem}{SUFFIX}"
            if candidate.is_file():
                return candidate
    known = ", ".join(r.name for r in available(prefix))
    raise RecipeError(
        "",
        f"no such recipe file or name (the {prefix or ''}* recipes: {known or 'none'}; "
        "`apcscale recipes list` shows every recipe and where it lies)",
        source=name,
    )


def list_recipes(prefix: str, width: int = 32) -> None:
    """Print the recipes named <prefix>*, each with its first comment line (and its folder, if not shipped)."""
    for r in available(prefix):
        where = "" if r.origin == "shipped" else f"  [{r.path}" + (", replaces the shipped one]" if r.shadows else "]")
        print(f"{r.name:{width}s} {r.summary}{where}")


def copy_recipe(name: str, dest: str | Path, *, force: bool = False) -> Path:
    """Copy a recipe (by name or path) to `dest` (a file, or a folder to put NAME.yaml in); returns the copy."""
    source = find_recipe(name)
    target = Path(dest).expanduser()
    if target.is_dir() or str(dest).endswith(("/", os.sep)):
        target = target / source.name
    if target.exists() and not force:
        raise RecipeError("", f"{target} already exists; choose another destination or pass --force", source=name)
    if target.resolve() == source.resolve():
        raise RecipeError("", f"{target} is the recipe itself", source=name)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="apcscale recipes", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="action", metavar="{list,cp}")
    ls = sub.add_parser("list", help="every recipe by name, with its first comment line and where it lies")
    ls.add_argument("--kind", choices=("sweep", "train"), help="only the sweep_* or the train_* recipes")
    cp = sub.add_parser("cp", help="copy a recipe to edit it: recipes cp NAME DEST")
    cp.add_argument("name", help="a recipe name (see `recipes list`) or file")
    cp.add_argument("dest", help="the copy's file name, or a folder to put NAME.yaml in")
    cp.add_argument("--force", action="store_true", help="replace DEST if it exists")
    return p


def main(argv: list[str] | None = None) -> int:
    from apcscale.utils.log import cli_logging

    cli_logging()
    parser = _parser()
    args = parser.parse_args(argv)
    if args.action is None:
        parser.print_help()
        return 2
    if args.action == "list":
        recipes = available(f"{args.kind}_" if args.kind else "")
        width = max([len(r.name) for r in recipes] + [20]) + 2
        for r in recipes:
            print(f"{r.name:{width}s} {r.summary}")
            if r.origin != "shipped":
                print(
                    f"{'':{width}s}   {r.path}" + (" (replaces the shipped recipe of that name)" if r.shadows else "")
                )
        print(
            f"\nshipped recipes: {PACKAGED}"
            f"\nyour own: a file by path, or a folder in ${ENV} or ./recipes; "
            "copy one to edit with `apcscale recipes cp NAME DEST`"
        )
        return 0
    try:
        target = copy_recipe(args.name, args.dest, force=args.force)
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
