"""Turning frozen config dataclasses into command-line options, documented by their field docs.

Each config lives beside the code that uses it (`ModelConfig` in `models`, `GenerationConfig` in
`generation`, ...); this module only reads the docstring written under each field and builds
`argparse` options from the fields, so that `--help` documents every option.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import textwrap
import types
import typing
from functools import cache
from typing import Any, Literal, get_args, get_origin

__all__ = ["add_config_args", "config_from_args", "field_docs"]


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass, by field name."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
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


def _parse_bool(text: str) -> bool:
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
        return (lambda s: tuple(item(x) for x in s.split(",") if x)), None
    if annotation is bool:
        return _parse_bool, None
    return annotation, None


def add_config_args(
    parser: argparse.ArgumentParser, cls: type, *, prefix: str = "", skip: tuple[str, ...] = ()
) -> None:
    """Add one option per field of `cls` (named --prefix-field), documented by its docstring."""
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls, include_extras=False)
    group = parser.add_argument_group(cls.__name__, (cls.__doc__ or "").strip())
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        convert, choices = _converter(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        group.add_argument(
            _flag(prefix, f.name),
            dest=f"{prefix}__{f.name}",
            type=convert,
            choices=choices,
            metavar=None if choices else f.name.upper(),
            default=dataclasses.MISSING,
            help=f"{docs.get(f.name, '')} (default: {default})",
        )


def config_from_args(cls: type, args: argparse.Namespace, *, prefix: str = "", **fixed: Any) -> Any:
    """Build `cls` from the options that `add_config_args` added (unset ones keep defaults)."""
    values = {
        f.name: getattr(args, f"{prefix}__{f.name}")
        for f in dataclasses.fields(cls)
        if getattr(args, f"{prefix}__{f.name}", dataclasses.MISSING) is not dataclasses.MISSING
    }
    values.update(fixed)
    return cls(**values)
