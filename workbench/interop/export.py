"""Steering directions out of the workbench: llama.cpp control vectors (GGUF) and steering files
for lm-evaluation-harness's built-in ``steered`` model (a ``.pt`` of hookpoint -> vector).

A llama.cpp control vector is a GGUF file with ``general.architecture = controlvector``,
``controlvector.model_hint`` (the model's architecture, e.g. ``qwen2``),
``controlvector.layer_count`` and one F32 tensor ``direction.N`` of width d_model per layer.
llama.cpp adds it, unconditionally and at every position, to the output of a block, and the
numbering is read from its source (ggml-org/llama.cpp, 2026):

* ``common_control_vector_load_one`` (common/common.cpp) writes ``direction.N`` to offset
  ``(N - 1) * n_embd`` of a buffer that "starts from layer 1";
* ``llama_adapter_cvec::apply`` (src/llama-adapter.cpp) fills ``tensors[il]`` from offset
  ``(il - 1) * n_embd`` for ``il = 1 .. n_layer - 1`` (``tensors[0]`` is always empty);
* the model graphs (e.g. src/models/qwen2.cpp) call ``build_cvec(cur, il)`` right after the FFN
  residual add of block ``il``, counted from 0: the block's output.

So ``direction.N`` is added to the output of block N (0-based), which is TransformerLens's
``blocks.N.hook_resid_post``: our layer N at site ``resid_post`` is ``direction.N`` (and
``blocks.N.hook_resid_pre`` is ``direction.{N-1}``). Layer 0's output cannot be steered from a
control vector; `control_vector_index` says so.

lm-eval's ``steered`` model adds each vector to the output of a named module of the Hugging Face
model's base model (``layers.N``: the output of decoder layer N, our resid_post N), with a forward
hook, at every position.

What is lost in both: ALS adds ``alpha * v`` only where ``cos(h, v) < tau``, at generated
positions; these files add it everywhere, always (the steering of ``tau > 1``,
``positions='all'``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from workbench.core.directions import LayerDirections
from workbench.core.steering import SteeringSpec, resolve
from workbench.engine.hooks import Site
from workbench.errors import WorkbenchError

__all__ = [
    "control_vector_index",
    "lm_eval_hookpoint",
    "read_control_vector",
    "steering_vectors",
    "write_control_vector",
    "write_lm_eval_steering",
]


def control_vector_index(layer: int, site: Site) -> int:
    """The N of llama.cpp's ``direction.N`` that adds at our (`layer`, `site`)."""
    if site == "resid_post":
        index = layer
    elif site == "resid_pre":
        index = layer - 1
    else:
        raise WorkbenchError(
            f"llama.cpp adds control vectors at block outputs; site {site!r} has no equivalent "
            "(use resid_post or resid_pre)"
        )
    if index < 1:
        raise WorkbenchError(
            f"layer {layer} at {site} is block {index}'s output, which a llama.cpp control vector "
            "cannot reach (its loader starts at block 1); steer a later layer"
        )
    return index


def steering_vectors(
    directions: LayerDirections, spec: SteeringSpec, *, scale: float = 1.0
) -> dict[int, Float[Tensor, " d_model"]]:
    """The vector each steered layer of `spec` adds when its gate fires (alpha * unit direction,
    alpha in absolute units), times `scale`."""
    if spec.rule != "additive":
        raise WorkbenchError(
            f"update rule {spec.rule!r} depends on the state it steers; only 'additive' is a "
            "fixed vector that a control vector can hold"
        )
    resolved = resolve(spec, directions)
    return {one.layer: scale * one.alpha * one.unit.float() for one in resolved.layers}


def write_control_vector(
    path: str | Path,
    vectors: Mapping[int, Float[Tensor, " d_model"]],
    *,
    site: Site,
    model_hint: str,
) -> Path:
    """Write `vectors` (our layer -> vector added there) as a llama.cpp control-vector GGUF."""
    import gguf

    path = Path(path)
    if not vectors:
        raise WorkbenchError("no vectors to export")
    widths = {int(v.shape[-1]) for v in vectors.values()}
    if len(widths) != 1:
        raise WorkbenchError(f"vectors of several widths {sorted(widths)}")
    by_index = {control_vector_index(layer, site): v for layer, v in vectors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "controlvector")
    writer.add_string("controlvector.model_hint", model_hint)
    writer.add_uint32("controlvector.layer_count", len(by_index))
    for index in sorted(by_index):
        data = by_index[index].detach().to("cpu", torch.float32).numpy()
        writer.add_tensor(f"direction.{index}", np.ascontiguousarray(data))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def read_control_vector(path: str | Path) -> tuple[dict[str, object], dict[int, np.ndarray]]:
    """(metadata, {N: vector of direction.N}) of a control-vector GGUF, read with `gguf`."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    meta: dict[str, object] = {}
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        meta[name] = field.contents()
    vectors = {}
    for tensor in reader.tensors:
        if not tensor.name.startswith("direction."):
            raise WorkbenchError(f"{path}: unexpected tensor {tensor.name!r} in a control vector")
        if tensor.tensor_type != gguf.GGMLQuantizationType.F32:
            raise WorkbenchError(f"{path}: {tensor.name} is {tensor.tensor_type.name}, not F32")
        vectors[int(tensor.name.split(".", 1)[1])] = np.array(tensor.data, dtype=np.float32)
    return meta, vectors


def lm_eval_hookpoint(layer: int, site: Site) -> str:
    """The module of the HF base model (Qwen2 / Llama layout) whose output is our (layer, site)."""
    if site == "resid_post":
        return f"layers.{layer}"
    if site == "resid_pre":
        return f"layers.{layer - 1}" if layer > 0 else "embed_tokens"
    raise WorkbenchError(
        f"lm-eval's steered model adds at module outputs; site {site!r} has no equivalent "
        "(use resid_post or resid_pre)"
    )


def write_lm_eval_steering(
    path: str | Path, vectors: Mapping[int, Float[Tensor, " d_model"]], *, site: Site
) -> Path:
    """Write `vectors` as the ``steer_path`` file of lm-eval's ``steered`` model."""
    if not vectors:
        raise WorkbenchError("no vectors to export")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = {
        lm_eval_hookpoint(layer, site): {
            "steering_vector": v.detach().to("cpu", torch.float32).clone(),
            "steering_coefficient": 1.0,
            "action": "add",
            "bias": None,
            "head_index": None,
        }
        for layer, v in vectors.items()
    }
    torch.save(config, path)
    return path
