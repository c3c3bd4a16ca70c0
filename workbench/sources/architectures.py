"""Random-weight models with real architecture shapes, built in memory (no download, no disk).

A GPU machine receives the working tree alone, so real checkpoints cannot travel there; speed,
memory and numerical invariants depend on shapes, not on trained weights. `ARCHITECTURES` holds
the shapes of published configurations (from their ``config.json``); `build_random_model` makes a
Hugging Face model of that shape with the architecture's own random initialisation, directly on
the device and in the dtype asked for, plus the character tokenizer of `workbench.sources.tiny` (ids
beyond its ~100 characters decode to nothing: generated text is meaningless, token ids are not).

``load_model("random:qwen2.5-7b")`` loads one through the bridge like any other model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from workbench.errors import WorkbenchError
from workbench.sources.tiny import char_tokenizer

__all__ = ["ARCHITECTURES", "RANDOM_PREFIX", "Architecture", "architecture", "build_random_model"]

RANDOM_PREFIX = "random:"
"""Model names that start with this build `ARCHITECTURES[name[len(RANDOM_PREFIX):]]`."""


Family = Literal["qwen2", "llama"]


@dataclass(frozen=True)
class Architecture:
    """The shape of a Qwen2- or Llama-family decoder (the fields of its Hugging Face config)."""

    hidden_size: int
    """Residual-stream width (d_model)."""
    intermediate_size: int
    """MLP hidden width."""
    num_hidden_layers: int
    """Decoder blocks."""
    num_attention_heads: int
    """Query heads."""
    num_key_value_heads: int
    """Key/value heads (grouped-query attention)."""
    vocab_size: int
    """Embedding rows and logits."""
    tie_word_embeddings: bool
    """Whether the unembedding is the embedding matrix."""
    max_position_embeddings: int = 32768
    """Longest context the rotary table is built for."""
    rope_theta: float = 1_000_000.0
    """Rotary base."""
    rms_norm_eps: float = 1e-6
    """RMSNorm epsilon."""
    source: str = ""
    """Where the shape was read."""
    family: Family = "qwen2"
    """Hugging Face model type: 'qwen2' (biases on q, k, v) or 'llama' (no biases)."""
    rope_scaling: tuple[tuple[str, float], ...] = ()
    """Extra rotary parameters beyond the base (Llama 3.1's 'llama3' frequency scaling), as
    (key, value) pairs; empty: plain rotary."""

    @property
    def n_params(self) -> int:
        """Parameter count (embeddings counted once when tied)."""
        d, f, n = self.hidden_size, self.intermediate_size, self.num_hidden_layers
        kv = d // self.num_attention_heads * self.num_key_value_heads
        biases = d + 2 * kv if self.family == "qwen2" else 0  # q, k, v biases (Qwen2 only)
        attn = d * d + 2 * d * kv + d * d + biases  # q, k, v, o weights
        block = attn + 3 * d * f + 2 * d
        embed = self.vocab_size * d * (1 if self.tie_word_embeddings else 2)
        return n * block + embed + d


_LLAMA31_ROPE = (
    ("rope_type", "llama3"),
    ("factor", 8.0),
    ("low_freq_factor", 1.0),
    ("high_freq_factor", 4.0),
    ("original_max_position_embeddings", 8192),
)
"""Llama 3.1's rotary frequency scaling (its config.json's ``rope_scaling``)."""

ARCHITECTURES: dict[str, Architecture] = {
    "qwen2.5-0.5b": Architecture(
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        vocab_size=151936,
        tie_word_embeddings=True,
        source="Qwen/Qwen2.5-0.5B-Instruct config.json",
    ),
    "qwen2.5-7b": Architecture(
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        vocab_size=152064,
        tie_word_embeddings=False,
        source="Qwen/Qwen2.5-7B-Instruct config.json",
    ),
    "llama-3.1-8b": Architecture(
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        tie_word_embeddings=False,
        max_position_embeddings=131072,
        rope_theta=500_000.0,
        rms_norm_eps=1e-5,
        family="llama",
        rope_scaling=_LLAMA31_ROPE,
        source="meta-llama/Llama-3.1-8B-Instruct config.json",
    ),
    # Layout proxies (benchmarks/step_overhead.py): the layer count, grouped-query ratio, norms,
    # MLPs, biases and rotary of the real model, at widths where a step's arithmetic is
    # negligible, so that its time is the framework's own cost per layer and hook point.
    "qwen2.5-7b-layout": Architecture(
        hidden_size=112,
        intermediate_size=224,
        num_hidden_layers=28,
        num_attention_heads=14,
        num_key_value_heads=2,  # 7 query heads per key/value head, as Qwen2.5-7B's 28 / 4
        vocab_size=512,
        tie_word_embeddings=False,
        max_position_embeddings=4096,
        source="Qwen2.5-7B's layout at width 112 (made up)",
    ),
    "llama-3.1-8b-layout": Architecture(
        hidden_size=64,
        intermediate_size=224,
        num_hidden_layers=32,
        num_attention_heads=8,
        num_key_value_heads=2,  # 4 query heads per key/value head, as Llama-3.1-8B's 32 / 8
        vocab_size=512,
        tie_word_embeddings=False,
        max_position_embeddings=4096,
        rope_theta=500_000.0,
        rms_norm_eps=1e-5,
        family="llama",
        rope_scaling=_LLAMA31_ROPE,
        source="Llama-3.1-8B's layout at width 64 (made up)",
    ),
    "tiny": Architecture(  # smoke runs on CPU: the same code paths in a second
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=512,
        tie_word_embeddings=False,
        max_position_embeddings=2048,
        source="made up (smoke runs)",
    ),
    "tiny-llama": Architecture(  # the Llama family's code paths in a second (tests)
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=512,
        tie_word_embeddings=False,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        family="llama",
        source="made up (tests)",
    ),
}


def architecture(name: str) -> Architecture:
    """The entry of `ARCHITECTURES` called `name` (a one-line error naming the choices)."""
    if name not in ARCHITECTURES:
        raise WorkbenchError(
            f"unknown architecture {name!r}; use one of {', '.join(sorted(ARCHITECTURES))}"
        )
    return ARCHITECTURES[name]


def build_random_model(
    name: str, device: torch.device, dtype: torch.dtype, *, seed: int = 0
) -> tuple[Any, Any]:
    """(Hugging Face model of the shape's family in eval mode, character tokenizer) of shape
    `name`, random.

    The weights are made on `device` in `dtype` from `seed`: the same call on the same device
    gives the same weights, so a second copy (a reference for `generate`) can be built alike.
    The EOS and pad rows of the unembedding are zero, so greedy decoding runs to its length.
    """
    arch = architecture(name)
    tok = char_tokenizer()
    config_cls, model_cls = _classes(arch.family)
    config = config_cls(
        vocab_size=arch.vocab_size,
        hidden_size=arch.hidden_size,
        intermediate_size=arch.intermediate_size,
        num_hidden_layers=arch.num_hidden_layers,
        num_attention_heads=arch.num_attention_heads,
        num_key_value_heads=arch.num_key_value_heads,
        max_position_embeddings=arch.max_position_embeddings,
        rope_parameters={"rope_theta": arch.rope_theta, "rope_type": "default"}
        | dict(arch.rope_scaling),
        rms_norm_eps=arch.rms_norm_eps,
        tie_word_embeddings=arch.tie_word_embeddings,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=None,
    )
    config.architectures = [model_cls.__name__]
    torch.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            model = model_cls(config)
    finally:
        torch.set_default_dtype(previous)
    with torch.no_grad():
        model.get_output_embeddings().weight[[tok.pad_token_id, tok.eos_token_id]] = 0.0
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    return model.eval(), tok


def _classes(family: Family) -> tuple[type, type]:
    """(config class, causal-LM class) of a family."""
    if family == "llama":
        from transformers import LlamaConfig, LlamaForCausalLM

        return LlamaConfig, LlamaForCausalLM
    from transformers import Qwen2Config, Qwen2ForCausalLM

    return Qwen2Config, Qwen2ForCausalLM
