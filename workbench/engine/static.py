"""Decoding with a static-shape step: a preallocated KV cache, fixed buffers, and on CUDA the step
replayed from a CUDA graph.

Continuous batching (`workbench.engine.continuous`) suits the CPU: rows leave the batch when they
finish and waiting prompts join it, so every step has new shapes and runs eagerly, each layer's
kernels launched from Python. Where a step's arithmetic is short (a GPU), those launches are what
it costs (`benchmarks/README.md`). `decode_static` decodes in static batches instead, as `generate`
does with a static cache: the prompts of a batch are left-padded to one width and prefilled once,
into a transformers `StaticCache` long enough for the whole generation; then every step has the
same shapes and reads and writes the same buffers (the new tokens, each row's position, the
attention mask, the cache), so on CUDA it is captured once as a CUDA graph and replayed. A row
that finishes stays in its batch until the batch is done (its tokens are discarded).

Steering runs inside the step as row tensors (`workbench.engine.row_steering`): each row's
`ResolvedSteering` is data, so arms sharing a batch share the graph and no steering setting costs
a recapture. The Hugging Face model runs its own modules (`lean_passes`); TransformerLens hooks
present when the call starts still fire on CPU, but a graph replays only what was captured, so
`graphs=True` refuses a bridge with hooks.

Greedy decoding equals continuous batching's token for token, steered or not; the CPU runs the
same step eagerly (`graphs=False`). `workbench.engine.generation.decode` chooses this decoder where
`GenerationConfig.static_step` asks for it and the job allows it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from workbench.engine.batching import left_pad
from workbench.engine.config import GenerationConfig
from workbench.engine.hooks import bridge_hooked
from workbench.engine.kv_cache import cache_keyword
from workbench.engine.lean_passes import lean_passes
from workbench.engine.row_steering import (
    GateState,
    RowArm,
    RowSteering,
    row_steering,
    row_steering_hooks,
)
from workbench.engine.sampling import next_tokens
from workbench.engine.sequences import (
    Completion,
    SequenceLog,
    StopRule,
    check_prompts,
    longest_first,
    pad_id,
)
from workbench.errors import WorkbenchError

__all__ = ["StaticStep", "decode_static"]

log = logging.getLogger(__name__)


def _check_model(model: Any) -> None:
    text = model.config.get_text_config(decoder=True)
    kinds = set(getattr(text, "layer_types", None) or ["full_attention"])
    if kinds != {"full_attention"}:
        raise WorkbenchError(
            f"the static step supports full attention only, not {sorted(kinds)}: use decode"
        )
    if model.config._attn_implementation not in ("sdpa", "eager"):
        raise WorkbenchError(
            f"the static step builds masks for sdpa or eager attention, not "
            f"{model.config._attn_implementation!r}: load the model with --model.attention sdpa"
        )


@dataclass
class StaticStep:
    """One static batch's decoding step: its buffers, cache and (on CUDA) graph."""

    model: Any
    """The Hugging Face causal LM (the bridge's ``original_model``)."""
    cache: Any
    """A transformers `StaticCache` holding the prompt and every generated position."""
    ids: Int[Tensor, "batch 1"]
    """The token each row is fed next."""
    positions: Int[Tensor, "batch 1"]
    """Each row's position id for that token (its real tokens so far)."""
    slot: Int[Tensor, ""]
    """The cache slot the next token is written to."""
    mask: Tensor
    """The 4-D attention mask (bool for sdpa, additive for eager attention): open at every
    real prompt token and every slot written so far; each step opens its own slot."""
    keyword: str
    """The forward's name for the cache ('cache' or 'past_key_values')."""
    graph: Any = None
    """The captured CUDA graph (None: the step runs eagerly)."""
    logits: Float[Tensor, "batch vocab"] | None = None
    """The graph's output buffer."""

    def _open_slot(self) -> None:
        """Let every row attend to the slot this step writes (a real token in every row)."""
        value = True if self.mask.dtype == torch.bool else 0.0
        self.mask.index_fill_(-1, self.slot.view(1), value)

    def _run(self) -> Float[Tensor, "batch vocab"]:
        """The step itself: shapes and buffers fixed, so that it can be captured."""
        self._open_slot()
        out = self.model(
            input_ids=self.ids,
            position_ids=self.positions,
            attention_mask=self.mask,
            use_cache=True,
            logits_to_keep=1,
            **{self.keyword: self.cache},
        )
        self.positions.add_(1)
        self.slot.add_(1)
        return out.logits[:, -1]

    def __call__(self, tokens: Int[Tensor, " batch"]) -> Float[Tensor, "batch vocab"]:
        """Feed `tokens`; the next logits of every row."""
        self.ids.copy_(tokens[:, None])
        if self.graph is None:
            return self._run()
        self.graph.replay()
        return self.logits

    def capture(self) -> None:
        """Record the step as a CUDA graph, to be replayed by every later call. The warm-up that
        capture needs runs a real step, so call this before the step it should replace and feed
        it `ids` already set: the caller passes the same tokens again to the first replay."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        state = (self.positions.clone(), self.slot.clone(), self._lengths())
        try:
            with torch.cuda.stream(stream):
                self._run()  # warm-up: cuBLAS handles and workspaces, outside the capture
            torch.cuda.current_stream().wait_stream(stream)
            self._restore(state)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.logits = self._run()
        except Exception:
            self._restore(state)
            raise
        self.graph = graph  # capture runs nothing: the buffers are as before it

    def _lengths(self) -> list[Tensor]:
        return [layer.cumulative_length.clone() for layer in self.cache.layers]

    def _restore(self, state: tuple[Tensor, Tensor, list[Tensor]]) -> None:
        positions, slot, lengths = state
        self.positions.copy_(positions)
        self.slot.copy_(slot)
        for layer, length in zip(self.cache.layers, lengths, strict=True):
            layer.cumulative_length.copy_(length)


def _prefill(
    bridge: Any, prompts: list[Sequence[int]], pad_id: int, cap: int
) -> tuple[StaticStep, Float[Tensor, "batch vocab"]]:
    """Prompts left-padded and prefilled into a static cache with room for `cap` more tokens;
    the step that decodes on from there, and the prompts' last logits."""
    from transformers import StaticCache

    model = bridge.original_model
    device = torch.device(bridge.cfg.device)
    ids, mask = left_pad(list(prompts), pad_id, device)
    n, width = ids.shape
    length = width + cap
    cache = StaticCache(config=model.config, max_cache_len=length)
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    keyword = cache_keyword(bridge)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
        **{keyword: cache},
    )
    dtype = next(model.parameters()).dtype
    eager = model.config._attn_implementation == "eager"
    opened = torch.zeros(n, 1, 1, length, dtype=torch.bool, device=device)
    opened[:, 0, 0, :width] = mask.bool()
    if eager:
        low = torch.tensor(torch.finfo(dtype).min, dtype=dtype, device=device)
        opened = torch.where(opened, torch.zeros((), dtype=dtype, device=device), low)
    step = StaticStep(
        model=model,
        cache=cache,
        ids=torch.zeros(n, 1, dtype=torch.long, device=device),
        positions=mask.sum(-1, keepdim=True),
        slot=torch.tensor(width, device=device),
        mask=opened,
        keyword=keyword,
    )
    return step, out.logits[:, -1]


def _decode_batch(
    bridge: Any,
    prompts: list[Sequence[int]],
    arms: list[RowArm],
    cfg: GenerationConfig,
    stop: StopRule | None,
    graphs: bool,
    seeds: list[int],
) -> list[Completion]:
    """One static batch, decoded until every row has finished."""
    device = torch.device(bridge.cfg.device)
    n = len(prompts)
    steering: RowSteering | None = row_steering(bridge, arms, device)
    state = GateState.zeros(n, device)
    log = SequenceLog(bridge, prompts, cfg.max_new_tokens, stop)
    generators = [torch.Generator().manual_seed(cfg.seed + s) for s in seeds]
    with row_steering_hooks(bridge, steering, state):
        start = time.perf_counter()
        step, logits = _prefill(bridge, prompts, pad_id(bridge.tokenizer), cfg.max_new_tokens)
        alive, counted = list(range(n)), [0] * n
        state.on.fill_(True)
        first = True
        while True:
            nxt = next_tokens(logits, torch.arange(n), cfg, generators)
            tokens = nxt.tolist()  # one transfer for the batch, not one per row
            counts = state.counts.tolist() if steering is not None else counted
            log.charge(alive, time.perf_counter() - start, [counts[j] - counted[j] for j in alive])
            counted = counts
            if steering is not None and not first:
                fired = state.fired.tolist()
                log.steered([j for j in alive if fired[j]])
            going = [j for j in alive if not log.take(j, tokens[j])]
            if not going:
                break
            if len(going) < len(alive):  # finished rows are fed on, unsteered and uncounted
                state.on.copy_(torch.tensor([j in going for j in range(n)]))
            alive = going
            start = time.perf_counter()
            if graphs and first:
                graphs = _captured(step, state, nxt)
            logits = step(nxt)
            first = False
    return [log.done[j] for j in range(n)]


def _captured(step: StaticStep, state: GateState, tokens: Tensor) -> bool:
    """Capture `step` as a CUDA graph before it is fed `tokens`; False (with a warning, the
    step left eager) if capture fails."""
    counted, fired = state.counts.clone(), state.fired.clone()
    step.ids.copy_(tokens[:, None])
    try:
        step.capture()
    except RuntimeError as err:
        log.warning("CUDA graph capture failed, the step runs eagerly: %s", err)
        return False
    finally:  # the capture's warm-up is a real step: its counts are undone
        state.counts.copy_(counted)
        state.fired.copy_(fired)
    return True


def decode_static(
    bridge: Any,
    prompts: Sequence[Sequence[int]],
    cfg: GenerationConfig = GenerationConfig(),
    *,
    arms: Sequence[RowArm] | None = None,
    stop: StopRule | None = None,
    graphs: bool | None = None,
    seeds: Sequence[int] | None = None,
    on_complete: Callable[[int, Completion], None] | None = None,
) -> list[Completion]:
    """Decode every prompt in static batches of `cfg.batch_size` (longest prompts first, so that
    a batch's prompts have similar lengths), each steered by its entry of `arms` (None: not
    steered; see `workbench.engine.row_steering` for the steering it takes). `graphs` replays each
    batch's step from a CUDA graph (default: on CUDA devices); `stop` and `seeds` as in
    `decode`; `on_complete(i, completion)` is called for each row of a batch when the batch is
    done. Completions in the order of `prompts`; `interventions` and `steered_steps` as `decode`
    counts them."""
    check_prompts(prompts)
    if not cfg.use_kv_cache:
        raise WorkbenchError("the static step decodes with its static KV cache: use_kv_cache true")
    arms = [None] * len(prompts) if arms is None else list(arms)
    seeds = list(range(len(prompts))) if seeds is None else list(seeds)
    if len(arms) != len(prompts) or len(seeds) != len(prompts):
        raise WorkbenchError(f"give one arm and one seed per prompt ({len(prompts)} prompts)")
    cuda = torch.device(bridge.cfg.device).type == "cuda"
    graphs = cuda if graphs is None else graphs
    if graphs and not cuda:
        raise WorkbenchError("CUDA graphs need a CUDA device: graphs false on this model")
    if graphs and bridge_hooked(bridge):
        raise WorkbenchError(
            "a CUDA graph replays only what it captured, and TransformerLens hooks are set on "
            "this model: remove them, or decode with graphs false"
        )
    _check_model(bridge.original_model)
    order = longest_first(prompts)
    done: dict[int, Completion] = {}
    with torch.inference_mode(), lean_passes(bridge):
        for at in range(0, len(order), cfg.batch_size):
            batch = order[at : at + cfg.batch_size]
            out = _decode_batch(
                bridge,
                [prompts[i] for i in batch],
                [arms[i] for i in batch],
                cfg,
                stop,
                graphs,
                [seeds[i] for i in batch],
            )
            for i, completion in zip(batch, out, strict=True):
                done[i] = completion
                if on_complete is not None:
                    on_complete(i, completion)
    return [done[i] for i in range(len(prompts))]
