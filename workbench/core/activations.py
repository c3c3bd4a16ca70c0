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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from jaxtyping import Bool, Float
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm.auto import tqdm

from workbench.core.problems import Problem
from workbench.core.prompts import PromptConfig, encode_problems
from workbench.engine.batching import left_pad
from workbench.engine.hooks import Site, check_hook_names, check_layers, resid_hook, stop_after
from workbench.engine.sequences import pad_id
from workbench.engine.teacher_forced import teacher_forced
from workbench.errors import WorkbenchError

__all__ = [
    "POSITIONS",
    "ActivationSet",
    "CacheConfig",
    "cache_activations",
    "cache_targets",
    "cached_settings",
    "paired_indexes",
    "write_shard",
]

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

    def with_trajectory_layers(self, layers: Sequence[int]) -> ActivationSet:
        """The same set with its token trajectories cut to `layers` (each must be among
        `trajectory_layers`)."""
        missing = set(layers) - set(self.trajectory_layers)
        if missing:
            raise WorkbenchError(f"no token trajectories cached at layers {sorted(missing)}")
        cols = torch.tensor([self.trajectory_layers.index(layer) for layer in layers])
        return replace(
            self,
            trajectory_layers=tuple(layers),
            trajectories=tuple(t[:, cols] for t in self.trajectories),
        )

    def in_order(self, ids: Sequence[str]) -> ActivationSet:
        """The rows of `ids` that the set holds, in that order (shards hold rows in the order
        they were written, which order-dependent estimates such as CV folds must not see)."""
        place = {pid: i for i, pid in enumerate(self.problem_ids)}
        return _subset(self, [place[pid] for pid in ids if pid in place])

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


@dataclass
class _Reducer:
    """Reduces one hooked tensor of a teacher-forced batch to the cached position policies."""

    n_prompt: int
    gen_len: Tensor
    gen_mask: Float[Tensor, "batch pos"]
    steps: Tensor
    cfg: CacheConfig
    out: dict[str, dict[int, Tensor]] = field(default_factory=dict)

    def __call__(self, layer: int, x: Float[Tensor, "batch pos d_model"]) -> None:
        xf, m = x.float(), self.gen_mask
        self._put("last_prompt", layer, xf[:, self.n_prompt - 1])
        self._put("mean_generated", layer, (xf * m[..., None]).sum(1) / m.sum(1, keepdim=True))
        for k in self.cfg.early_ks:
            w = m * (self.steps < k)[None, :]
            self._put(f"mean_first_{k}", layer, (xf * w[..., None]).sum(1) / w.sum(1, keepdim=True))
        if layer in self.cfg.trajectory_layers:
            lengths = self.gen_len.tolist()
            parts = [x[i, self.n_prompt : self.n_prompt + n] for i, n in enumerate(lengths)]
            self._put("trajectory", layer, torch.cat(parts).half())

    def _put(self, key: str, layer: int, value: Tensor) -> None:
        self.out.setdefault(key, {})[layer] = value.cpu()

    def tensors(self, layers: Sequence[int]) -> dict[str, Tensor]:
        """Per policy, the states stacked on a layer axis (trajectories: their layers only)."""
        result = {
            key: torch.stack([per_layer[layer] for layer in layers if layer in per_layer], dim=1)
            for key, per_layer in self.out.items()
        }
        if "trajectory" in result:
            result["traj_lengths"] = self.gen_len.cpu()
        return result


def _batch_states(
    bridge: Any,
    prompts: Sequence[Sequence[int]],
    generated: Sequence[Sequence[int]],
    layers: tuple[int, ...],
    cfg: CacheConfig,
    *,
    final: bool = False,
) -> tuple[dict[str, Tensor], dict[str, Tensor] | None]:
    """The batch's states at `layers`; with `final`, also the final normalised state (the last
    layer's residual through ``ln_final``, in the same forward)."""
    # The decoder's layout: prompts left-padded to a common length P, generations after them
    # (right-padded), so that a steering context active here sees the prompt/generated split it
    # sees while decoding (`teacher_forced`).
    pad = pad_id(bridge.tokenizer)
    device = torch.device(bridge.cfg.device)
    p_ids, p_mask = left_pad(prompts, pad, device)
    n_prompt = p_ids.shape[1]
    gen_len = torch.tensor([len(g) for g in generated], device=device)
    width = max(1, int(gen_len.max()))
    g_ids = torch.full((len(prompts), width), pad, dtype=torch.long, device=device)
    for i, g in enumerate(generated):
        g_ids[i, : len(g)] = torch.tensor(list(g), dtype=torch.long)
    g_mask = (torch.arange(width, device=device)[None, :] < gen_len[:, None]).long()
    ids, mask = torch.cat([p_ids, g_ids], dim=1), torch.cat([p_mask, g_mask], dim=1)
    gen_mask = torch.cat([torch.zeros_like(p_mask), g_mask], dim=1).float()
    gen_mask[gen_len == 0, n_prompt - 1] = 1.0  # no generated token: fall back to the prompt's end
    steps = torch.arange(ids.shape[1], device=device) - n_prompt  # generated-token index
    reduce = _Reducer(n_prompt, gen_len, gen_mask, steps, cfg)
    reduce_final = _Reducer(n_prompt, gen_len, gen_mask, steps, CacheConfig(early_ks=cfg.early_ks))

    def make_hook(layer: int):
        def hook(x: Float[Tensor, "batch pos d_model"], hook: Any) -> Tensor:
            reduce(layer, x)
            if final and layer == layers[-1]:
                reduce_final(layer, bridge.ln_final(x))
            return x

        return hook

    hooks = [(resid_hook(layer, cfg.site), make_hook(layer)) for layer in layers]
    with (
        bridge.hooks(fwd_hooks=hooks),
        teacher_forced(bridge, len(prompts), n_prompt),
        stop_after(bridge, hooks[-1][0]),  # nothing after the last hooked layer runs
    ):
        bridge(ids, attention_mask=mask)
    return reduce.tensors(layers), reduce_final.tensors(layers) if final else None


def cached_settings(path: str | Path) -> dict[str, Any] | None:
    """The settings the states in `path` were cached with (layers, site, trajectory_layers,
    early_ks, as `CacheConfig` names them); None if nothing is cached there. A resumed pass must
    keep what it began with."""
    index_path = Path(path) / "activations.json"
    if not index_path.exists():
        return None
    index = json.loads(index_path.read_text())
    return {k: index.get(k, []) for k in ("layers", "site", "trajectory_layers", "early_ks")}


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
    final_out: str | Path | None = None,
) -> ActivationSet:
    """Cache states of the graded generations `rows` (from `run_cot`) of `problems` into `out`.

    Rows are matched to problems by id; their ``tokens`` are the generated ids and ``correct``
    the label. Shards already in `out` are kept and their problems skipped (resume). Batches
    group generations of similar length; the returned set is in the order of `problems`.
    With `final_out` (which needs the last layer's ``resid_post`` among the cached states), the
    final normalised state is cached in the same forward passes, as its own set in `final_out`
    (what caching with ``site='final'`` gives, for the price of one ``ln_final``).
    """
    out = Path(out)
    by_id = {r["id"]: r for r in rows}
    missing = [p.id for p in problems if p.id not in by_id]
    if missing:
        raise WorkbenchError(f"{len(missing)} problems have no generation (e.g. {missing[0]})")
    targets = cache_targets(bridge, out, cfg, final_out)
    layers = targets[0][1]
    indexes = paired_indexes(targets, meta)
    done = {pid for s in indexes[0]["shards"] for pid in s["ids"]}
    todo = [p for p in problems if p.id not in done]
    # longest generations first, so that each teacher-forced batch holds similar lengths and
    # little padding (the set is put back in the order of `problems` at the end)
    todo.sort(key=lambda p: -len(by_id[p.id]["tokens"]))
    bar = tqdm(
        total=len(problems), initial=len(problems) - len(todo), desc="cache", disable=not progress
    )
    for lo in range(0, len(todo), cfg.batch_size):
        chunk = todo[lo : lo + cfg.batch_size]
        prompts = encode_problems(bridge.tokenizer, chunk, prompt)
        generated = [by_id[p.id]["tokens"] for p in chunk]
        states = _batch_states(bridge, prompts, generated, layers, cfg, final=final_out is not None)
        labels = torch.tensor([bool(by_id[p.id]["correct"]) for p in chunk])
        written = states if final_out is not None else states[:1]
        for (path, _, _), index, tensors in zip(targets, indexes, written, strict=True):
            write_shard(path, index, {**tensors, "labels": labels}, [p.id for p in chunk])
        bar.update(len(chunk))
    bar.close()
    aset = ActivationSet.load(out)
    order = {pid: i for i, pid in enumerate(aset.problem_ids)}
    wanted = [order[p.id] for p in problems]
    if wanted == list(range(len(aset))):
        return aset
    return _subset(aset, wanted)


Target = tuple[Path, tuple[int, ...], CacheConfig]
"""A folder of cached states, the layers it holds, and what it caches."""


def cache_targets(
    bridge: Any, out: Path, cfg: CacheConfig, final_out: str | Path | None = None
) -> list[Target]:
    """The folders a cache of `cfg` writes (`out`, and `final_out` for the final normalised
    state), each with its layers, checked against the bridge."""
    layers = check_layers(bridge, range(bridge.cfg.n_layers) if cfg.layers is None else cfg.layers)
    if cfg.site == "final":  # one state per model, filed under the last layer
        layers = (bridge.cfg.n_layers - 1,)
    bad = set(cfg.trajectory_layers) - set(layers)
    if bad:
        raise WorkbenchError(f"trajectory layers {sorted(bad)} are not among the cached layers")
    last_resid = cfg.site == "resid_post" and layers[-1] == bridge.cfg.n_layers - 1
    if final_out is not None and not last_resid:
        raise WorkbenchError(
            "final_out needs the last layer's resid_post among the cached states (it goes through "
            "ln_final); cache site 'final' on its own instead"
        )
    check_hook_names(bridge, [resid_hook(layer, cfg.site) for layer in layers])
    targets: list[Target] = [(out, layers, cfg)]
    if final_out is not None:
        final_cfg = CacheConfig(site="final", early_ks=cfg.early_ks, batch_size=cfg.batch_size)
        targets.append((Path(final_out), (bridge.cfg.n_layers - 1,), final_cfg))
    return targets


def paired_indexes(
    targets: Sequence[Target], meta: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The shard index of each target folder, resumed; shards that not every folder finished
    (a pass interrupted between their writes) are dropped from all, to be cached again."""
    indexes = []
    for path, layers, cfg in targets:
        path.mkdir(parents=True, exist_ok=True)
        indexes.append(_resumed_index(path, path / "activations.json", layers, cfg, meta))
    common = set.intersection(*({s["file"] for s in ix["shards"]} for ix in indexes))
    for index in indexes:
        index["shards"] = [s for s in index["shards"] if s["file"] in common]
    return indexes


def write_shard(
    out: Path, index: dict[str, Any], tensors: Mapping[str, Tensor], ids: Sequence[str]
) -> None:
    """One batch's shard, then the index that lists it (replaced atomically)."""
    name = f"shard-{len(index['shards']):05d}.safetensors"
    save_file({k: v.contiguous() for k, v in tensors.items()}, out / name)
    index["shards"].append({"file": name, "ids": list(ids)})
    index_path = out / "activations.json"
    tmp = index_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(index, indent=1))
    tmp.replace(index_path)


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
