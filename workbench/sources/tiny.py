"""The model cache folder, and a random tiny Qwen2 with a character tokenizer built in code.

The tiny model needs no download: tests, the toy model (`workbench.sources.toy`) and ``--model.name
tiny`` build it in seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = ["build_tiny_model", "cache_root", "char_tokenizer"]


def cache_root() -> Path:
    """Where converted models live: $ALS_CACHE_DIR, else ~/.cache/als-workbench."""
    root = os.environ.get("ALS_CACHE_DIR") or Path.home() / ".cache" / "als-workbench"
    return Path(root)


def char_tokenizer():
    """A character-level fast tokenizer: ids 0-2 are <pad>, <eos>, <unk>, then printable ASCII
    and newline; a minimal chat template ("role: content" lines)."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<unk>"]
    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    vocab = {tok: i for i, tok in enumerate(specials + chars)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tokenizer.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    fast.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    return fast


def build_tiny_model(
    folder: str | Path, *, n_layers: int = 2, d_model: int = 64, seed: int = 0
) -> Path:
    """Save a random tiny Qwen2 and a character tokenizer (with a chat template) to `folder`."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fast = char_tokenizer()
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(fast),
        hidden_size=d_model,
        intermediate_size=2 * d_model,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
        bos_token_id=None,
    )
    config.architectures = ["Qwen2ForCausalLM"]
    model = Qwen2ForCausalLM(config)
    with torch.no_grad():  # EOS and pad logits 0: random greedy text does not end at once
        model.lm_head.weight[[fast.pad_token_id, fast.eos_token_id]] = 0.0
    model.save_pretrained(folder)
    return folder
