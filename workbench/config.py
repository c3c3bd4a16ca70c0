"""Turning frozen config dataclasses into command-line options, documented by their field docs.

Each config lives beside the code that uses it (`ModelConfig` in `models`, `GenerationConfig` in
`generation`, ...); this module only reads the docstring written under each field and builds
`argparse` options from the fields, so that `--help` documents every option. `check_finite` is
the check every config's `__post_init__` shares: no NaN or infinite number gets into a run.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import math
import re
import textwrap
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any, Literal, get_args, get_origin

from workbench.errors import WorkbenchError

__all__ = [
    "add_config_args",
    "build_config",
    "check_finite",
    "check_quantiles",
    "config_from_args",
    "field_docs",
    "finite_float",
    "parse_bool",
    "whole_number",
]


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, tuple | list):
        return [v for v in value if isinstance(v, float)]
    return []


def check_finite(cfg: Any) -> None:
    """Refuse NaN or infinite numbers in any field of the dataclass `cfg` (or in its tuples)."""
    for f in dataclasses.fields(cfg):
        bad = [v for v in _floats(getattr(cfg, f.name)) if not math.isfinite(v)]
        if bad:
            raise WorkbenchError(f"{f.name} must be finite numbers, not {bad[0]}")


def check_quantiles(values: tuple[float, ...]) -> None:
    """Refuse tau quantiles outside [0, 1] (1.0 means always on)."""
    bad = [q for q in values if not 0 <= q <= 1]
    if bad:
        raise WorkbenchError(f"tau_quantiles must lie in [0, 1], not {bad[0]}")


def finite_float(text: str) -> float:
    """argparse type: a float that is neither NaN nor infinite."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


_SCALARS: dict[Any, Any] = {float: finite_float, int: whole_number}


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass, by field name (none where the source is
    not shipped: the options then go undocumented rather than failing)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    tree = ast.parse(textwrap.dedent(source))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _flag(prefix: str, name: str) -> str:
    return "--" + (f"{prefix}-" if prefix else "") + name.replace("_", "-")


def parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, not {text!r}")


def _converter(annotation: Any) -> tuple[Any, list[Any] | None]:
    """(type function, choices) for a field annotation."""
    origin = get_origin(annotation)
    if origin is Literal:
        values = list(get_args(annotation))
        return type(values[0]), values
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        if len(inner) == 1:
            convert, choices = _converter(inner[0])
            return (lambda s: None if s.lower() == "none" else convert(s)), choices
        return str, None
    if origin in (tuple, list):
        item = get_args(annotation)[0] if get_args(annotation) else str
        item = _SCALARS.get(item, item)
        return (lambda s: tuple(item(x) for x in s.split(",") if x)), None
    if annotation is bool:
        return parse_bool, None
    return _SCALARS.get(annotation, annotation), None


def add_config_args(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    prefix: str = "",
    skip: tuple[str, ...] = (),
    flags: Mapping[str, str] | None = None,
) -> None:
    """Add one option per field of `cls` (named --prefix-field, or as `flags` renames it: field
    -> option), documented by its docstring."""
    docs = field_docs(cls)
    flags = flags or {}
    hints = typing.get_type_hints(cls, include_extras=False)
    group = parser.add_argument_group(cls.__name__, (cls.__doc__ or "").strip())
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        convert, choices = _converter(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        group.add_argument(
            flags.get(f.name) or _flag(prefix, f.name),
            dest=f"{prefix}__{f.name}",
            type=convert,
            choices=choices,
            metavar=None if choices else f.name.upper(),
            default=dataclasses.MISSING,
            help=f"{docs.get(f.name, '')} (default: {default})".replace("%", "%%"),
        )


def config_from_args(
    cls: type,
    args: argparse.Namespace,
    *,
    prefix: str = "",
    flags: Mapping[str, str] | None = None,
    **fixed: Any,
) -> Any:
    """Build `cls` from the options that `add_config_args` added (unset ones keep defaults)."""
    values = {
        f.name: getattr(args, f"{prefix}__{f.name}")
        for f in dataclasses.fields(cls)
        if getattr(args, f"{prefix}__{f.name}", dataclasses.MISSING) is not dataclasses.MISSING
    }
    values.update(fixed)
    return build_config(cls, values, prefix=prefix, flags=flags)


def build_config(
    cls: type,
    values: dict[str, Any],
    *,
    prefix: str = "",
    flags: Mapping[str, str] | None = None,
) -> Any:
    """`cls(**values)`, its errors naming the command-line options instead of the fields."""
    flags = flags or {}
    try:
        return cls(**values)
    except WorkbenchError as exc:
        names = "|".join(re.escape(f.name) for f in dataclasses.fields(cls))
        message = re.sub(
            rf"\b({names})\b",
            lambda m: flags.get(m.group(1)) or _flag(prefix, m.group(1)),
            str(exc),
        )
        raise WorkbenchError(message) from exc
