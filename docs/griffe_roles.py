"""A griffe extension (mkdocs.yml: mkdocstrings' `extensions`): the Sphinx roles a few docstrings
use (:func:`name`, :class:`name`, :data:`name`, ...) become Markdown, so that the API pages show
a link, not the role's text. A name that resolves to a documented public object of the package
(looked up in the docstring's module, then as a full path) becomes a cross-reference to it; any
other name becomes inline code."""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|data|meth|attr|mod|obj|exc|const):`~?([^`]+)`")


def _target(obj: griffe.Object, name: str, loader: griffe.GriffeLoader) -> str | None:
    """The full path of `name` as seen from `obj`'s docstring, if it is rendered on a page."""
    name = name.rstrip("()")
    for path in (f"{obj.module.path}.{name}", name):
        try:
            found = loader.modules_collection[path]
        except (KeyError, ValueError, AttributeError, griffe.AliasResolutionError):
            continue
        if isinstance(found, griffe.Alias):
            continue
        public = not any(part.startswith("_") for part in found.path.split("."))
        if public and found.docstring is not None:
            return found.path
    return None


def _objects(obj: griffe.Object) -> Any:
    yield obj
    for member in obj.members.values():
        if not isinstance(member, griffe.Alias):
            yield from _objects(member)


class RstRoles(griffe.Extension):
    """Rewrite the Sphinx roles of every docstring of a package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        for obj in _objects(pkg):
            doc = obj.docstring
            if doc is None or ":" not in doc.value:
                continue

            def markdown(match: re.Match[str], obj: griffe.Object = obj) -> str:
                name = match.group(1)
                target = _target(obj, name, loader)
                return f"[`{name}`][{target}]" if target else f"`{name}`"

            doc.value = ROLE.sub(markdown, doc.value)
