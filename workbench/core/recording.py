"""States of graded generations recorded while they decode, instead of a teacher-forced pass.

`cache_activations` runs every generation once more, teacher-forced, to cache its states, at
about the compute that decoding it took (`benchmarks/recording_overhead.py`). The decoder computes
those very states, one new position per pass: a
`StateRecorder` hooks the same sites while `decode` runs (with `feed_final`, so that the token
that ended each sequence is fed too) and reduces them on the spot, per sequence, to what
`cache_activations` keeps: the last prompt token's state, the mean over the generated tokens'
states, the means over the first k, every token's state at the trajectory layers, and optionally
the final normalised state. Completed sequences go to the same shards in the same folder format,
as they finish, so that `cache_activations` over the same folder then only loads them (and
teacher-forces whatever an interrupted decode did not record). The states equal the
teacher-forced ones up to float rounding (KV-cached incremental attention; tested).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from workbench.core.activations import CacheConfig, cache_targets, paired_indexes, write_shard
from workbench.engine.hooks import resid_hook
from workbench.engine.passes import PassInfo, current_pass, interventions_suppressed
from workbench.errors import WorkbenchError

__all__ = ["StateRecorder"]


@dataclass(frozen=True)
class _Pass:
    """Where one forward pass's newest states go, worked out once for all layers."""

    mine: Bool[Tensor, " batch"]
    """Batch rows that are recorded (on the states' device)."""
    prompt_rows: Int[Tensor, " p"]
    """Recorded rows (numbered among `mine`) whose newest position is the last prompt token..."""
    prompt_slots: Int[Tensor, " p"]
    """...and their slots."""
    src: Int[Tensor, " e"]
    """Recorded rows (among `mine`) whose generated state enters a running sum, once per sum..."""
    dst: Int[Tensor, " e"]
    """...and the place in the flattened (sum, slot) axis it is added to."""
    gen_rows: Int[Tensor, " g"]
    """Recorded rows (among `mine`) at a generated token: its trajectory entry's rows."""


class _Sums:
    """Running per-sequence reductions of one folder's states, over the rows of one decode: per
    layer, the last prompt state and, on one flattened axis, the sum over every generated token
    (block 0) and over the first k (block i for the i-th of `early_ks`)."""

    def __init__(self, n_rows: int, n_layers: int, d_model: int, cfg: CacheConfig) -> None:
        self.cfg, self.n_rows = cfg, n_rows
        self.last_prompt = torch.zeros((n_layers, n_rows, d_model))
        self.sums = torch.zeros((n_layers, (1 + len(cfg.early_ks)) * n_rows, d_model))
        self.counts = torch.zeros(n_rows, dtype=torch.long)  # generated states seen per row
        self.traj_log: list[tuple[Tensor, Tensor, Tensor]] = []  # (slots, token index, states)

    def plan(self, slots: Int[Tensor, " batch"], index: Int[Tensor, " batch"], device) -> _Pass:
        """The pass's routing, from each batch row's slot (-1: not recorded) and the index of its
        newest position among the generated tokens (-1: the last prompt token); counts the
        generated states and opens the pass's trajectory entry."""
        mine = slots >= 0
        slots, index = slots[mine], index[mine]
        rows = torch.arange(len(slots))
        gen = index >= 0
        s, g, r = slots[gen], index[gen], rows[gen]
        self.counts.index_add_(0, s, torch.ones_like(s))
        src, dst = [r], [s]
        for i, k in enumerate(self.cfg.early_ks, start=1):
            first = g < k
            src.append(r[first])
            dst.append(s[first] + i * self.n_rows)
        if self.cfg.trajectory_layers and len(s):
            width = len(self.cfg.trajectory_layers)
            entry = torch.zeros((len(s), width, self.last_prompt.shape[-1]), dtype=torch.float16)
            self.traj_log.append((s, g, entry))
        return _Pass(
            mine=mine.to(device),
            prompt_rows=rows[~gen],
            prompt_slots=slots[~gen],
            src=torch.cat(src),
            dst=torch.cat(dst),
            gen_rows=r,
        )

    def add(self, j: int, route: _Pass, x: Float[Tensor, "rows d_model"], col: int | None) -> None:
        """The recorded rows' newest states `x` at layer number `j` of this folder (and its
        trajectory column `col`, if kept)."""
        xf = x.float().cpu()
        if len(route.prompt_rows):
            self.last_prompt[j, route.prompt_slots] = xf[route.prompt_rows]
        if len(route.src):
            self.sums[j].index_add_(0, route.dst, xf[route.src])
        if col is not None and len(route.gen_rows):
            self.traj_log[-1][2][:, col] = xf[route.gen_rows].half()

    def take(self, slots: list[int], lengths: list[int]) -> dict[str, Tensor]:
        """The cached tensors of completed rows `slots` (`lengths` generated tokens each), in the
        layout `cache_activations` writes; their trajectory entries leave the log."""
        idx = torch.tensor(slots)
        seen = self.counts[idx].tolist()
        if seen != lengths:
            raise WorkbenchError(
                f"recorded {seen} generated states for generations of {lengths} tokens: decode "
                "with feed_final=True while recording"
            )
        n = torch.tensor(lengths, dtype=torch.float32)[None, :, None]
        prompt = self.last_prompt[:, idx]
        none = n == 0  # no generated token: every mean falls back to the prompt's end
        block = self.sums.unflatten(1, (-1, self.n_rows))  # layer, sum, slot, d
        out = {
            "last_prompt": prompt,
            "mean_generated": torch.where(none, prompt, block[:, 0, idx] / n.clamp(min=1)),
        }
        for i, k in enumerate(self.cfg.early_ks, start=1):
            out[f"mean_first_{k}"] = torch.where(none, prompt, block[:, i, idx] / n.clamp(1, k))
        out = {key: v.transpose(0, 1).contiguous() for key, v in out.items()}
        if self.cfg.trajectory_layers:
            out.update(self._take_trajectories(idx, lengths))
        return out

    def _take_trajectories(self, idx: Tensor, lengths: list[int]) -> dict[str, Tensor]:
        if not self.traj_log:
            width = len(self.cfg.trajectory_layers)
            empty = torch.zeros((0, width, self.last_prompt.shape[-1]), dtype=torch.float16)
            return {"trajectory": empty, "traj_lengths": torch.tensor(lengths)}
        s = torch.cat([e[0] for e in self.traj_log])
        g = torch.cat([e[1] for e in self.traj_log])
        v = torch.cat([e[2] for e in self.traj_log])
        mine = torch.isin(s, idx)
        rest = ~mine
        self.traj_log = [(s[rest], g[rest], v[rest])]
        s, g, v = s[mine], g[mine], v[mine]
        rank = torch.empty(int(idx.max()) + 1, dtype=torch.long)
        rank[idx] = torch.arange(len(idx))
        order = torch.argsort(rank[s] * (int(g.max()) + 1 if len(g) else 1) + g)
        return {"trajectory": v[order], "traj_lengths": torch.tensor(lengths)}


class StateRecorder:
    """What `cache_activations(bridge, ..., out, cfg, final_out=...)` would cache, recorded while
    the generations decode (see the module docstring). Use: enter `recording(rows)` around the
    `decode` call (with ``feed_final=True``) whose sequences `rows` are to be recorded, and call
    `complete` for each of them once its row is graded; shards are written every
    `cfg.batch_size` completions and when the recording closes."""

    def __init__(
        self,
        bridge: Any,
        out: str | Path,
        cfg: CacheConfig,
        *,
        final_out: str | Path | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.bridge, self.cfg = bridge, cfg
        self.targets = cache_targets(bridge, Path(out), cfg, final_out)
        self.indexes = paired_indexes(self.targets, meta)
        self.layers = self.targets[0][1]
        self._sums: list[_Sums] = []
        self._slot: dict[int, int] = {}
        self._slot_of = torch.empty(0, dtype=torch.long)
        self._ready: list[tuple[int, str, int, bool]] = []
        self._route: tuple[_Pass, ...] | None = None

    @property
    def recorded_ids(self) -> set[str]:
        """Problem ids whose states are already in the folder (from this or an earlier run)."""
        return {pid for s in self.indexes[0]["shards"] for pid in s["ids"]}

    @contextlib.contextmanager
    def recording(self, rows: Sequence[int]) -> Iterator[StateRecorder]:
        """Hooks that record the states of decode sequences `rows` (their `PassInfo.rows`
        numbers) for the passes inside the context; always removed. What completed and is not
        yet written is written on the way out."""
        d_model = self.bridge.cfg.d_model
        n = len(rows)
        self._slot = {int(r): i for i, r in enumerate(rows)}
        self._slot_of = torch.full((max(self._slot, default=-1) + 1,), -1, dtype=torch.long)
        self._slot_of[list(self._slot)] = torch.arange(n)
        self._sums = [_Sums(n, len(self.layers), d_model, self.cfg)]
        if len(self.targets) > 1:
            self._sums.append(_Sums(n, 1, d_model, self.targets[1][2]))
        hooks = [
            (resid_hook(layer, self.cfg.site), self._hook(j)) for j, layer in enumerate(self.layers)
        ]
        try:
            with self.bridge.hooks(fwd_hooks=hooks):
                yield self
        finally:
            self.flush()
            self._sums = []

    def _hook(self, j: int):
        traj = sorted(self.cfg.trajectory_layers)  # stored in layer order, as cached
        col = traj.index(self.layers[j]) if self.layers[j] in traj else None
        final = len(self.targets) > 1 and j == len(self.layers) - 1

        def hook(x: Float[Tensor, "batch pos d_model"], hook: Any) -> Tensor:
            now = current_pass()
            if now is None or interventions_suppressed():
                return x
            if j == 0:  # the pass's first recorded layer: route its rows once for all layers
                self._route = self._plan(now.info, x)
            route = self._route
            if route is None:
                return x
            newest = x[:, -1][route[0].mine]
            self._sums[0].add(j, route[0], newest, col)
            if final:
                self._sums[1].add(0, route[1], self.bridge.ln_final(newest[:, None])[:, 0], None)
            return x

        return hook

    def _plan(self, step: PassInfo, x: Tensor) -> tuple[_Pass, ...] | None:
        """Each folder's routing of this pass's newest states (None: no row of it is recorded).
        The newest position of a row is the last prompt token in a prefill, else the generated
        token this pass consumes."""
        rows = step.rows
        known = rows < len(self._slot_of)
        slots = torch.full_like(rows, -1)
        slots[known] = self._slot_of[rows[known]]
        if not bool((slots >= 0).any()):
            return None
        index = (step.offset + x.shape[1] - 1 - step.n_prompt).cpu()  # -1: the prompt's end
        return tuple(sums.plan(slots, index, x.device) for sums in self._sums)

    def complete(self, row: int, problem_id: str, n_generated: int, correct: bool) -> None:
        """Decode sequence `row` has finished (with `n_generated` tokens) and is graded."""
        self._ready.append((self._slot[row], problem_id, n_generated, correct))
        if len(self._ready) >= self.cfg.batch_size:
            self.flush()

    def flush(self) -> None:
        """Write the completed sequences not yet written as one shard per folder."""
        if not self._ready or not self._sums:
            return
        slots, ids, lengths, labels = (list(c) for c in zip(*self._ready, strict=True))
        label_t = torch.tensor(labels)
        for (path, _, _), index, sums in zip(self.targets, self.indexes, self._sums, strict=True):
            write_shard(path, index, {**sums.take(slots, lengths), "labels": label_t}, ids)
        self._ready = []
