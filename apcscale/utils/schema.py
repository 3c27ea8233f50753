"""Typed recipe schemas: dataclasses in, validated objects out.

Recipes are YAML files that users write by hand, so every mistake must be
reported before any work starts, naming the field where it happened:

    recipes/lstm.yaml: model.widht: unknown field (did you mean 'width'?)
    recipes/lstm.yaml: optim.lr: expected a number, got 'fast'

`from_dict(cls, data)` builds a (possibly nested) dataclass from plain data,
checking field names, types (int, float, str, bool, Literal, Optional, Union,
list, dict, nested dataclasses) and calling each dataclass's `validate()` for
cross-field rules.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml


class RecipeError(ValueError):
    """A recipe (or recipe-like config) is invalid. The message names the field."""

    def __init__(self, where: str, message: str, source: str | None = None):
        self.where = where
        self.detail = message
        self.source = source
        prefix = f"{source}: " if source else ""
        loc = f"{where}: " if where else ""
        super().__init__(f"{prefix}{loc}{message}")

    def at(self, source: str | None = None, parent: str | None = None) -> RecipeError:
        """The same error, attributed to a file and/or nested under a parent field."""
        where = f"{parent}.{self.where}" if parent and self.where else (parent or self.where)
        return RecipeError(where, self.detail, source or self.source)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None))
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise RecipeError(where, f"expected {_type_name(tp)}, got null")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except RecipeError as exc:
                errors.append(exc)
        raise RecipeError(where, f"expected {_type_name(tp)}, got {_describe(value)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise RecipeError(where, f"expected true or false, got {_describe(value)}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            # accept 1e6-style floats that are whole numbers (YAML reads 1e6 as a string or float)
            number = _number(value)
            if number is not None and float(number).is_integer():
                return int(number)
            raise RecipeError(where, f"expected an integer, got {_describe(value)}")
        return value
    if tp is float:
        number = _number(value)
        if number is None:
            raise RecipeError(where, f"expected a number, got {_describe(value)}")
        return float(number)
    if tp is str:
        if isinstance(value, str):
            return value
        raise RecipeError(where, f"expected a string, got {_describe(value)}")
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise RecipeError(where, f"expected a path, got {_describe(value)}")
    if origin is Literal:
        allowed = get_args(tp)
        if value in allowed and type(value) in {type(a) for a in allowed}:
            return value
        hint = _suggest(str(value), [str(a) for a in allowed])
        raise RecipeError(where, f"expected one of {', '.join(repr(a) for a in allowed)}, got {_describe(value)}{hint}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise RecipeError(where, f"expected a list, got {_describe(value)}")
        (item_tp, *rest) = get_args(tp) or (Any,)
        items = [_convert(item_tp, item, f"{where}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(where, f"expected a mapping, got {_describe(value)}")
        key_tp, val_tp = get_args(tp) or (Any, Any)
        return {_convert(key_tp, k, f"{where}"): _convert(val_tp, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value, where=where)
    raise TypeError(f"schema: unsupported field type {tp!r} at {where}")


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value.replace("_", ""))
        except ValueError:
            return None
    return None


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Build dataclass `cls` from `data`, validating names and types recursively."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(where, f"expected a mapping, got {_describe(data)}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            raise RecipeError(path, "unknown field" + _suggest(str(key), list(fields)))
        kwargs[key] = _convert(hints[key], value, path)
    for name, f in fields.items():
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            path = f"{where}.{name}" if where else name
            raise RecipeError(path, f"required field is missing (expected {_type_name(hints[name])})")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except RecipeError as exc:
            raise exc.at(parent=where or None) from None
    return obj


def to_dict(obj: Any) -> Any:
    """Plain-data form of a (nested) dataclass, for YAML/JSON dumps and hashing."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def check(condition: bool, where: str, message: str) -> None:
    """Raise a RecipeError at `where` unless `condition` holds (for validate() methods)."""
    if not condition:
        raise RecipeError(where, message)


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise RecipeError("", "recipe file not found", source=str(path))
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RecipeError("", f"not valid YAML: {exc}", source=str(path)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError("", "a recipe must be a mapping of sections", source=str(path))
    return data


def load_recipe(cls: type, path: str | Path, overrides: list[str] | None = None) -> Any:
    """Load a YAML recipe into dataclass `cls`; `overrides` are 'a.b=value' strings (YAML values)."""
    data = load_yaml(path)
    for item in overrides or []:
        apply_override(data, item, source=str(path))
    try:
        return from_dict(cls, data)
    except RecipeError as exc:
        raise exc.at(source=str(path)) from None


def apply_override(data: dict, item: str, source: str | None = None) -> None:
    if "=" not in item:
        raise RecipeError("", f"override {item!r} must look like section.field=value", source=source)
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise RecipeError(key, "cannot override inside a non-mapping", source=source)
    try:
        node[parts[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(
            key.strip(),
            f"{raw!r} is not a valid YAML value ({problem}); quote a string, write a list as [a, b]",
            source=source,
        ) from None


__all__ = ["RecipeError", "from_dict", "to_dict", "check", "load_yaml", "load_recipe", "apply_override"]
