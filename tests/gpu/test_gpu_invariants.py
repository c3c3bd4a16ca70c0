"""Decoding and steering invariants on a GPU, on random weights of real architecture shapes.

Run by ``scripts/gpu_check.sh`` (``pytest -m gpu tests/gpu``). The environment picks the device
and shapes: ``ALS_GPU_DEVICE`` (default ``cuda``) and ``ALS_GPU_ARCHS`` (default
``qwen2.5-0.5b,qwen2.5-7b,llama-3.1-8b``: the paper's two models' shapes); ``--smoke`` sets
``cpu`` and ``tiny,tiny-llama`` so the same tests run in CI.

In bfloat16, two correct decoders (cached and uncached passes, another attention kernel, another
batch shape) may pick different tokens where the two best logits are a near tie: their rounding
differs. A pair of decodings therefore counts as agreeing when it is identical, or when at its
first difference the two tokens' logits (the common prefix re-run, uncached) lie within
`NEAR_TIE` standard deviations of the logits of each other. Any other difference fails.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

import pytest
import torch
from helpers import n_hooks, resid_states

from workbench.core.directions import LayerDirections
from workbench.core.prompts import encode_prompts
from workbench.core.steering import SteeringSpec, resolve, steer
from workbench.engine.batching import left_pad
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.engine.teacher_forced import teacher_forced
from workbench.sources.architectures import build_random_model
from workbench.sources.models import ModelConfig, load_model

pytestmark = pytest.mark.gpu

DEVICE = os.environ.get("ALS_GPU_DEVICE", "cuda")
ARCHS = os.environ.get("ALS_GPU_ARCHS", "qwen2.5-0.5b,qwen2.5-7b,llama-3.1-8b").split(",")
NEAR_TIE = {torch.bfloat16: 0.25, torch.float32: 1e-3}
"""A difference at a gap under this many logit standard deviations is rounding (see above)."""
QUESTIONS = [
    "12+3=",
    "What is five times six? Explain.",
    "x",
    "Natalia sold clips to 48 of her friends in April, and then half as many in May. " * 2,
]
N_NEW = 24

if DEVICE.startswith("cuda") and not torch.cuda.is_available():
    pytest.skip(
        "no CUDA device (scripts/gpu_check.sh --smoke runs these on CPU)", allow_module_level=True
    )


@pytest.fixture(scope="module", params=ARCHS)
def arch(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def bridge(arch):
    model = load_model(ModelConfig(name=f"random:{arch}", device=DEVICE, dtype="bfloat16"))
    yield model
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@pytest.fixture(scope="module")
def prompts(bridge) -> list[list[int]]:
    return encode_prompts(bridge.tokenizer, QUESTIONS)


@pytest.fixture(scope="module")
def directions(bridge) -> LayerDirections:
    n_layers, d = bridge.cfg.n_layers, bridge.cfg.d_model
    g = torch.Generator().manual_seed(0)
    return LayerDirections(  # on the CPU, as loaded from disk: the hooks move them
        layers=tuple(range(n_layers)),
        success_mean=torch.randn(n_layers, d, generator=g),
        failure_mean=torch.randn(n_layers, d, generator=g),
        mean_norm=torch.full((n_layers,), 2.0),
        n_success=10,
        n_failure=10,
    )


def _last_logits(bridge, prompt: Sequence[int], generated: Sequence[int]) -> torch.Tensor:
    """Next-token logits after `prompt` + `generated`, uncached, with the prompt/generated split
    published as while decoding (so steering hooks fire where they fired then)."""
    x = torch.tensor([[*prompt, *generated]], device=bridge.cfg.device)
    with teacher_forced(bridge, 1, len(prompt)):
        return bridge(x, return_type="logits")[0, -1].float()


def _agree(bridge, prompt, a: Sequence[int], b: Sequence[int], dtype) -> str:
    """'same', or 'near tie at step t (gap g sd)'; fails on any other difference."""
    t = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    if t is None:
        assert len(a) == len(b), f"lengths {len(a)} and {len(b)} with a common prefix"
        return "same"
    logits = _last_logits(bridge, prompt, a[:t])
    gap = float((logits[a[t]] - logits[b[t]]).abs() / logits.std())
    assert gap <= NEAR_TIE[dtype], f"decodings differ at step {t} where the gap is {gap:.3f} sd"
    return f"near tie at step {t} ({gap:.3f} sd)"


def _hf_generate(model, prompts, pad_id: int, n_new: int) -> list[tuple[int, ...]]:
    ids, mask = left_pad(prompts, pad_id, model.device)
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=False,
            max_new_tokens=n_new,
            min_new_tokens=n_new,
            pad_token_id=pad_id,
        )
    return [tuple(row) for row in out[:, ids.shape[1] :].tolist()]


def _decodings(bridge, prompts, n_new: int) -> dict[str, list[tuple[int, ...]]]:
    runs = {
        "cached": GenerationConfig(max_new_tokens=n_new, batch_size=len(prompts)),
        "uncached": GenerationConfig(
            max_new_tokens=n_new, batch_size=len(prompts), use_kv_cache=False
        ),
        "one-by-one": GenerationConfig(max_new_tokens=n_new, batch_size=1),
    }
    return {name: [c.tokens for c in decode(bridge, prompts, cfg)] for name, cfg in runs.items()}


def _check_all_agree(bridge, prompts, runs, dtype) -> list[str]:
    verdicts = []
    reference = runs["cached"]
    for name, tokens in runs.items():
        if name == "cached":
            continue
        for p, a, b in zip(prompts, reference, tokens, strict=True):
            verdicts.append(f"{name}: {_agree(bridge, p, a, b, dtype)}")
    return verdicts


def test_bf16_cached_uncached_one_by_one_and_generate_agree(bridge, arch, prompts):
    """cached == uncached == one-by-one == `generate` on the same weights (bf16; see above)."""
    hf_model, tok = build_random_model(arch, torch.device(DEVICE), torch.bfloat16)
    ours = bridge.original_model.get_input_embeddings().weight
    assert torch.equal(hf_model.get_input_embeddings().weight, ours)  # same weights
    runs = _decodings(bridge, prompts, N_NEW)
    runs["generate"] = _hf_generate(hf_model, prompts, tok.pad_token_id, N_NEW)
    del hf_model
    assert len({len(p) for p in prompts}) > 1  # left padding is exercised
    assert all(len(t) == N_NEW for t in runs["cached"])
    verdicts = _check_all_agree(bridge, prompts, runs, torch.bfloat16)
    print(f"{arch} bf16 verdicts:", *verdicts, sep="\n  ")  # shown by pytest -rA


def test_fp32_decoding_equals_generate():
    """In float32 (TF32 off) the workbench and `generate` agree token for token, up to near ties
    at a thousandth of a logit sd."""
    arch = ARCHS[0]
    torch.backends.cuda.matmul.allow_tf32 = False
    bridge = load_model(ModelConfig(name=f"random:{arch}", device=DEVICE, dtype="float32"))
    hf_model, tok = build_random_model(arch, torch.device(DEVICE), torch.float32)
    prompts = encode_prompts(bridge.tokenizer, QUESTIONS)
    runs = _decodings(bridge, prompts, N_NEW)
    runs["generate"] = _hf_generate(hf_model, prompts, tok.pad_token_id, N_NEW)
    verdicts = _check_all_agree(bridge, prompts, runs, torch.float32)
    print(f"{arch} fp32 verdicts:", *verdicts, sep="\n  ")
    assert sum(v.endswith("same") for v in verdicts) >= len(verdicts) - 1, verdicts


@pytest.mark.parametrize("spec_kwargs", [{"alpha": 0.0, "tau": 2.0}, {"alpha": 1.0, "tau": -1.5}])
def test_no_op_steering_leaves_logits_bit_identical(bridge, directions, prompts, spec_kwargs):
    ids = torch.tensor([prompts[1]], device=bridge.cfg.device)
    layers = (0, bridge.cfg.n_layers // 2)
    with torch.inference_mode():
        base = bridge(ids)
        with steer(bridge, SteeringSpec(layers=layers, **spec_kwargs), directions):
            steered = bridge(ids)
    assert torch.equal(base, steered)


def test_steering_on_device_adds_alpha_v_there_and_nowhere_before(bridge, directions, prompts):
    """Directions kept on the CPU are moved to the hook's device and dtype; the steered layer is
    h + alpha v exactly as computed in the model's dtype; earlier layers are bit-identical; no
    hook is left behind."""
    mid = bridge.cfg.n_layers // 2
    layers = (mid - 1, mid, mid + 1)
    ids = torch.tensor([prompts[1]], device=bridge.cfg.device)
    _, clean = resid_states(bridge, ids, layers)
    before = n_hooks(bridge)
    with steer(bridge, SteeringSpec(layers=(mid,), alpha=0.5, tau=2.0), directions) as stats:
        _, steered = resid_states(bridge, ids, layers)
    assert n_hooks(bridge) == before
    assert directions.success_mean.device.type == "cpu"
    assert steered[mid].device == clean[mid].device and steered[mid].dtype == torch.bfloat16
    v = directions.unit(mid).to(clean[mid].device, torch.bfloat16)
    assert torch.equal(steered[mid - 1], clean[mid - 1])
    assert torch.equal(steered[mid], clean[mid] + 1.0 * v)  # relative 0.5 x mean norm 2.0
    assert not torch.equal(steered[mid + 1], clean[mid + 1])
    assert stats.fired[mid] == ids.shape[1]


def test_steered_decoding_cached_uncached_one_by_one_agree(bridge, directions, prompts):
    """Conditional steering gives the same tokens with and without the KV cache and at any batch
    shape (up to near ties), and does change the tokens when it always fires."""
    spec = SteeringSpec(layers=(bridge.cfg.n_layers // 2,), alpha=4.0, tau=2.0)
    with steer(bridge, spec, directions):
        runs = _decodings(bridge, prompts, 12)
    _check_all_agree_steered(bridge, spec, directions, prompts, runs)
    plain = decode(bridge, prompts, GenerationConfig(max_new_tokens=12, batch_size=len(prompts)))
    assert [c.tokens for c in plain] != runs["cached"]


def _check_all_agree_steered(bridge, spec, directions, prompts, runs) -> None:
    with steer(bridge, spec, directions):
        _check_all_agree(bridge, prompts, runs, torch.bfloat16)


def test_static_step_graphed_and_eager_agree_with_decode(bridge, directions, prompts):
    """`decode_static` (a CUDA graph on CUDA, eager on the CPU) against `decode`, unsteered and
    with a gated arm on half the rows: the same tokens up to near ties, the same interventions
    where the tokens are the same."""
    from workbench.engine.static import decode_static

    cuda = torch.device(DEVICE).type == "cuda"
    spec = SteeringSpec(layers=(bridge.cfg.n_layers // 2,), alpha=2.0, tau=0.0)
    arm = resolve(spec, directions, bridge)
    arms = [arm if i % 2 == 0 else None for i in range(len(prompts))]
    cfg = GenerationConfig(max_new_tokens=N_NEW, batch_size=len(prompts))
    with contextlib.ExitStack() as stack:
        stack.enter_context(steer(bridge, spec, directions, rows=range(0, len(prompts), 2)))
        eager = decode(bridge, prompts, cfg)
    graphed = decode_static(bridge, prompts, cfg, arms=arms, graphs=cuda)
    plain = decode_static(bridge, prompts, cfg, graphs=cuda)
    runs = {"cached": [c.tokens for c in eager], "static": [c.tokens for c in graphed]}
    with steer(bridge, spec, directions, rows=range(0, len(prompts), 2)):
        verdicts = _check_all_agree(bridge, prompts, runs, torch.bfloat16)
    for a, b in zip(eager, graphed, strict=True):
        assert a.tokens != b.tokens or a.interventions == b.interventions
    unsteered = {"cached": [c.tokens for c in decode(bridge, prompts, cfg)]}
    unsteered["static"] = [c.tokens for c in plain]
    verdicts += _check_all_agree(bridge, prompts, unsteered, torch.bfloat16)
    print(f"static step (graphs={cuda}) verdicts:", *verdicts, sep="\n  ")
