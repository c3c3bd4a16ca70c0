"""Residual-stream activations of graded generations, cached through the bridge's hook points.

Each generation (prompt + its generated tokens) is run once more, teacher-forced, in batches, with
hooks at the chosen layers; the forward stops after the last hooked layer (no unembedding). The
hooks reduce on the spot to the chosen positions:

* ``last_prompt``: the state at the last prompt token (it predicts the first answer token);
* ``mean_generated``: the mean over the generated tokens' positions;
* trajectories: every generated token's state at `CacheConfig.trajectory_layers` (float16).

Each batch is written to its own safetensors shard as soon as it is done, so memory is bounded by
one batch and an interrupted run resumes after the last complete shard. `ActivationSet.load`
gathers the shards.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from jaxtyping import Bool, Float
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm.auto import tqdm

from workbench.core.generation import DecodeStep, left_pad, publish_step
from workbench.core.hooks import Site, check_hook_names, check_layers, resid_hook
from workbench.core.native_attention import native_attention
from workbench.core.problems import Problem
from workbench.core.prompts import PromptConfig, encode_prompts
from workbench.errors import WorkbenchError

__all__ = ["POSITIONS", "ActivationSet", "CacheConfig", "cache_activations"]

logger = logging.getLogger(__name__)

Position = Literal["last_prompt", "mean_generated"]
POSITIONS: tuple[str, ...] = ("last_prompt", "mean_generated")
_NOT_STATES = {"labels", "trajectory", "traj_lengths"}


@dataclass(frozen=True, kw_only=True)
class CacheConfig:
    """What to cache."""

    layers: tuple[int, ...] | None = None
    """Layers to cache; None = all."""
    site: Site = "resid_post"
    """Residual hook site: resid_pre, resid_mid, resid_post, or final (the normalised state the
    unembedding reads; cached once, under the last layer)."""
    trajectory_layers: tuple[int, ...] = ()
    """Layers at which every generated token's state is kept (float16)."""
    early_ks: tuple[int, ...] = ()
    """Also keep the mean over the first k generated tokens ('mean_first_k'), for each k."""
    batch_size: int = 8
    """Generations per forward pass (and per shard)."""

    def __post_init__(self) -> None:
        if any(k < 1 for k in self.early_ks):
            raise WorkbenchError(f"early_ks must be >= 1, not {self.early_ks}")
        if self.batch_size < 1:
            raise WorkbenchError(f"batch size must be >= 1, not {self.batch_size}")


@dataclass(frozen=True, kw_only=True, eq=False)
class ActivationSet:
    """Cached states of graded generations: one row per problem."""

    layers: tuple[int, ...]
    """Model layers, in the order of the states' layer axis."""
    site: str
    """Hook site the states were read at."""
    problem_ids: tuple[str, ...]
    """Problem id of each row."""
    labels: Bool[Tensor, " n"]
    """Whether each generation was graded correct (against the gold answer)."""
    states: dict[str, Float[Tensor, "n layer d_model"]]
    """Per position policy ('last_prompt', 'mean_generated'): the states."""
    trajectory_layers: tuple[int, ...] = ()
    """Layers of the stored trajectories."""
    trajectories: tuple[Float[Tensor, "_tokens traj_layer d_model"], ...] = ()
    """Per row, every generated token's state at `trajectory_layers` (empty if none cached)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Model, label source, prompt config and library version."""

    def __len__(self) -> int:
        return len(self.problem_ids)

    def at(self, position: str) -> Float[Tensor, "n layer d_model"]:
        """States for one position policy, with a clear error for an unknown one."""
        if position not in self.states:
            raise WorkbenchError(f"no states for position {position!r}; have {sorted(self.states)}")
        return self.states[position]

    @classmethod
    def load(cls, path: str | Path) -> ActivationSet:
        """Gather the shards that `cache_activations` wrote to `path`."""
        path = Path(path)
        index_path = path / "activations.json"
        if not index_path.exists():
            raise WorkbenchError(f"no cached activations in {path} (run the caching stage first)")
        index = json.loads(index_path.read_text())
        shards = [load_file(path / s["file"]) for s in index["shards"]]
        if not shards:
            raise WorkbenchError(f"{path} holds no activation shards")
        trajectories: list[Tensor] = []
        for shard in shards:
            if "trajectory" in shard:
                trajectories.extend(shard["trajectory"].split(shard["traj_lengths"].tolist()))
        return cls(
            layers=tuple(index["layers"]),
            site=index["site"],
            problem_ids=tuple(pid for s in index["shards"] for pid in s["ids"]),
            labels=torch.cat([s["labels"] for s in shards]).bool(),
            states={
                p: torch.cat([s[p] for s in shards]) for p in shards[0] if p not in _NOT_STATES
            },
            trajectory_layers=tuple(index["trajectory_layers"]),
            trajectories=tuple(trajectories),
            meta=index["meta"],
        )


def _batch_states(
    bridge: Any,
    prompts: Sequence[Sequence[int]],
    generated: Sequence[Sequence[int]],
    layers: tuple[int, ...],
    cfg: CacheConfig,
) -> dict[str, Tensor]:
    # The decoder's layout: prompts left-padded to a common length P, generations after them
    # (right-padded). A steering context active here then sees the same prompt/generated split,
    # through the published `DecodeStep`, as it does while decoding.
    pad_id = bridge.tokenizer.pad_token_id
    pad_id = bridge.tokenizer.eos_token_id if pad_id is None else pad_id
    device = torch.device(bridge.cfg.device)
    p_ids, p_mask = left_pad(prompts, pad_id, device)
    n_prompt = p_ids.shape[1]
    gen_len = torch.tensor([len(g) for g in generated], device=device)
    width = max(1, int(gen_len.max()))
    g_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long, device=device)
    for i, g in enumerate(generated):
        g_ids[i, : len(g)] = torch.tensor(list(g), dtype=torch.long)
    g_mask = (torch.arange(width, device=device)[None, :] < gen_len[:, None]).long()
    ids, mask = torch.cat([p_ids, g_ids], dim=1), torch.cat([p_mask, g_mask], dim=1)
    gen_mask = torch.cat([torch.zeros_like(p_mask), g_mask], dim=1).float()
    gen_mask[gen_len == 0, n_prompt - 1] = 1.0  # no generated token: fall back to the prompt's end
    step = DecodeStep.whole_sequence(len(prompts), n_prompt, device)
    last: dict[int, Tensor] = {}
    mean: dict[int, Tensor] = {}
    traj: dict[int, Tensor] = {}
    early: dict[tuple[int, int], Tensor] = {}
    steps = torch.arange(ids.shape[1], device=device) - n_prompt  # generated-token index

    def make_hook(layer: int):
        def hook(x: Float[Tensor, "batch pos d_model"], hook: Any) -> Tensor:
            xf = x.float()
            last[layer] = xf[:, n_prompt - 1].cpu()
            mean[layer] = ((xf * gen_mask[..., None]).sum(1) / gen_mask.sum(1, keepdim=True)).cpu()
            for k in cfg.early_ks:
                w = gen_mask * (steps < k)[None, :]
                early[layer, k] = ((xf * w[..., None]).sum(1) / w.sum(1, keepdim=True)).cpu()
            if layer in cfg.trajectory_layers:
                parts = [x[i, n_prompt : n_prompt + n] for i, n in enumerate(gen_len.tolist())]
                traj[layer] = torch.cat(parts).half().cpu()
            return x

        return hook

    hooks = [(resid_hook(layer, cfg.site), make_hook(layer)) for layer in layers]
    with (
        torch.inference_mode(),
        bridge.hooks(fwd_hooks=hooks),
        publish_step(step),
        native_attention(bridge),
    ):
        stop = None if cfg.site == "final" else max(layers) + 1
        bridge(ids, attention_mask=mask, stop_at_layer=stop)
    result = {
        "last_prompt": torch.stack([last[layer] for layer in layers], dim=1),
        "mean_generated": torch.stack([mean[layer] for layer in layers], dim=1),
    }
    for k in cfg.early_ks:
        result[f"mean_first_{k}"] = torch.stack([early[layer, k] for layer in layers], dim=1)
    if cfg.trajectory_layers:
        result["trajectory"] = torch.stack([traj[layer] for layer in cfg.trajectory_layers], dim=1)
        result["traj_lengths"] = gen_len.cpu()
    return result


def _resumed_index(
    out: Path,
    index_path: Path,
    layers: Sequence[int],
    cfg: CacheConfig,
    meta: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The shard index of `out`: what is there already (same settings only), or a new one."""
    index = {
        "layers": list(layers),
        "site": cfg.site,
        "trajectory_layers": list(cfg.trajectory_layers),
        "early_ks": list(cfg.early_ks),
        "meta": {"label_source": "gold answer", **(meta or {})},
        "shards": [],
    }
    if index_path.exists():
        old = json.loads(index_path.read_text())
        keys = ("layers", "site", "trajectory_layers", "early_ks")
        if any(old.get(k, []) != index[k] for k in keys):
            raise WorkbenchError(f"{out} holds activations cached with other settings; delete it")
        index["shards"] = [s for s in old["shards"] if (out / s["file"]).exists()]
    return index


def cache_activations(
    bridge: Any,
    problems: Sequence[Problem],
    rows: Sequence[Mapping[str, Any]],
    out: str | Path,
    cfg: CacheConfig = CacheConfig(),
    *,
    prompt: PromptConfig = PromptConfig(),
    meta: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> ActivationSet:
    """Cache states of the graded generations `rows` (from `run_cot`) of `problems` into `out`.

    Rows are matched to problems by id; their ``tokens`` are the generated ids and ``correct``
    the label. Shards already in `out` are kept and their problems skipped (resume). Batches
    group generations of similar length; the returned set is in the order of `problems`.
    """
    out = Path(out)
    by_id = {r["id"]: r for r in rows}
    missing = [p.id for p in problems if p.id not in by_id]
    if missing:
        raise WorkbenchError(f"{len(missing)} problems have no generation (e.g. {missing[0]})")
    layers = check_layers(bridge, range(bridge.cfg.n_layers) if cfg.layers is None else cfg.layers)
    if cfg.site == "final":  # one state per model, filed under the last layer
        layers = (bridge.cfg.n_layers - 1,)
    bad = set(cfg.trajectory_layers) - set(layers)
    if bad:
        raise WorkbenchError(f"trajectory layers {sorted(bad)} are not among the cached layers")
    check_hook_names(bridge, [resid_hook(layer, cfg.site) for layer in layers])
    index_path = out / "activations.json"
    index = _resumed_index(out, index_path, layers, cfg, meta)
    done = {pid for s in index["shards"] for pid in s["ids"]}
    todo = [p for p in problems if p.id not in done]
    # longest generations first, so that each teacher-forced batch holds similar lengths and
    # little padding (the set is put back in the order of `problems` at the end)
    todo.sort(key=lambda p: -len(by_id[p.id]["tokens"]))
    out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(
        total=len(problems), initial=len(problems) - len(todo), desc="cache", disable=not progress
    )
    for lo in range(0, len(todo), cfg.batch_size):
        chunk = todo[lo : lo + cfg.batch_size]
        prompts = encode_prompts(bridge.tokenizer, [p.question for p in chunk], prompt)
        tensors = _batch_states(
            bridge, prompts, [by_id[p.id]["tokens"] for p in chunk], layers, cfg
        )
        tensors["labels"] = torch.tensor([bool(by_id[p.id]["correct"]) for p in chunk])
        name = f"shard-{len(index['shards']):05d}.safetensors"
        save_file({k: v.contiguous() for k, v in tensors.items()}, out / name)
        index["shards"].append({"file": name, "ids": [p.id for p in chunk]})
        tmp = index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(index, indent=1))
        tmp.replace(index_path)
        bar.update(len(chunk))
    bar.close()
    aset = ActivationSet.load(out)
    order = {pid: i for i, pid in enumerate(aset.problem_ids)}
    wanted = [order[p.id] for p in problems]
    if wanted == list(range(len(aset))):
        return aset
    return _subset(aset, wanted)


def _subset(aset: ActivationSet, rows: Sequence[int]) -> ActivationSet:
    idx = torch.tensor(rows, dtype=torch.long)
    return ActivationSet(
        layers=aset.layers,
        site=aset.site,
        problem_ids=tuple(aset.problem_ids[i] for i in rows),
        labels=aset.labels[idx],
        states={k: v[idx] for k, v in aset.states.items()},
        trajectory_layers=aset.trajectory_layers,
        trajectories=tuple(aset.trajectories[i] for i in rows) if aset.trajectories else (),
        meta=aset.meta,
    )
