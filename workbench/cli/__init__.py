"""The `als` command: the arguments as dataclasses (`commands`), the parser generated from them
(`parser`, jsonargparse) and the dispatch and printing (`main`)."""

from workbench.cli.main import main

__all__ = ["main"]
