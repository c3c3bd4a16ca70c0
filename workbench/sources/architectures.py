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
from typing import Any

import torch

from workbench.errors import WorkbenchError
from workbench.sources.tiny import char_tokenizer

__all__ = ["ARCHITECTURES", "RANDOM_PREFIX", "Architecture", "build_random_model"]

RANDOM_PREFIX = "random:"
"""Model names that start with this build `ARCHITECTURES[name[len(RANDOM_PREFIX):]]`."""


@dataclass(frozen=True)
class Architecture:
    """The shape of a Qwen2-family decoder (the fields of its Hugging Face config)."""

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

    @property
    def n_params(self) -> int:
        """Parameter count (embeddings counted once when tied)."""
        d, f, n = self.hidden_size, self.intermediate_size, self.num_hidden_layers
        kv = d // self.num_attention_heads * self.num_key_value_heads
        attn = d * d + 2 * d * kv + d * d + d + 2 * kv  # q, k, v, o weights; q, k, v biases
        block = attn + 3 * d * f + 2 * d
        embed = self.vocab_size * d * (1 if self.tie_word_embeddings else 2)
        return n * block + embed + d


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
    """(Hugging Face Qwen2 model in eval mode, character tokenizer) of shape `name`, random.

    The weights are made on `device` in `dtype` from `seed`: the same call on the same device
    gives the same weights, so a second copy (a reference for `generate`) can be built alike.
    The EOS and pad rows of the unembedding are zero, so greedy decoding runs to its length.
    """
    from transformers import Qwen2Config, Qwen2ForCausalLM

    arch = architecture(name)
    tok = char_tokenizer()
    config = Qwen2Config(
        vocab_size=arch.vocab_size,
        hidden_size=arch.hidden_size,
        intermediate_size=arch.intermediate_size,
        num_hidden_layers=arch.num_hidden_layers,
        num_attention_heads=arch.num_attention_heads,
        num_key_value_heads=arch.num_key_value_heads,
        max_position_embeddings=arch.max_position_embeddings,
        rope_parameters={"rope_theta": arch.rope_theta, "rope_type": "default"},
        rms_norm_eps=arch.rms_norm_eps,
        tie_word_embeddings=arch.tie_word_embeddings,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=None,
    )
    config.architectures = ["Qwen2ForCausalLM"]
    torch.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            model = Qwen2ForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    with torch.no_grad():
        model.get_output_embeddings().weight[[tok.pad_token_id, tok.eos_token_id]] = 0.0
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    return model.eval(), tok
