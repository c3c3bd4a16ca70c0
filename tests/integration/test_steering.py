"""Steering invariants on a tiny random model (see the ALS core issue)."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch
from helpers import n_hooks, random_directions, resid_states
from test_generation import MANY, _third_repeat, _tokens

from workbench.core.directions import LayerDirections
from workbench.core.prompts import encode_prompts
from workbench.core.steering import SteeringSpec, steer
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.engine.mid_residual import edit_resid_mid
from workbench.errors import WorkbenchError

QUESTIONS = ["12+3=", "What is five times six? Explain.", "x"]


@pytest.fixture
def directions(tiny_bridge):
    return random_directions(tiny_bridge)


@pytest.fixture
def ids(tiny_bridge):
    return torch.tensor([encode_prompts(tiny_bridge.tokenizer, ["What is 2+2?"])[0]])


@pytest.mark.parametrize("spec_kwargs", [{"alpha": 0.0, "tau": 2.0}, {"alpha": 1.0, "tau": -1.5}])
def test_no_op_settings_leave_logits_bit_identical(tiny_bridge, directions, ids, spec_kwargs):
    with torch.inference_mode():
        base = tiny_bridge(ids)
        with steer(tiny_bridge, SteeringSpec(layers=(0, 2), **spec_kwargs), directions) as stats:
            steered = tiny_bridge(ids)
    assert torch.equal(base, steered)
    if spec_kwargs["tau"] < -1:
        assert stats.fired == {0: 0, 2: 0}


def test_steered_layer_is_h_plus_alpha_v_and_earlier_layers_unchanged(tiny_bridge, directions, ids):
    layers = range(tiny_bridge.cfg.n_layers)
    spec = SteeringSpec(layers=(1,), alpha=0.5, tau=2.0)  # fires everywhere
    _, clean = resid_states(tiny_bridge, ids, layers)
    with steer(tiny_bridge, spec, directions) as stats:
        # A hook added after the steering hook at the same point sees the steered state.
        _, steered = resid_states(tiny_bridge, ids, layers)
    assert torch.equal(steered[0], clean[0])
    expected = clean[1] + 0.5 * 2.0 * directions.unit(1)  # relative alpha x mean norm 2.0
    torch.testing.assert_close(steered[1], expected)
    assert not torch.allclose(steered[2], clean[2])
    assert stats.fired[1] == ids.shape[1] and stats.rate(1) == 1.0


def test_steering_at_resid_mid_reaches_the_residual_stream(tiny_bridge, directions, ids):
    """TransformerLens 4's ``hook_resid_mid`` is the MLP norm's input: a nudge written there
    alone would leave ``hook_resid_post`` without it. Steered at resid_mid, the middle state is
    h + alpha v, and the block's output is that state plus the MLP's output on it."""
    names = ["blocks.1.hook_resid_mid", "blocks.1.hook_resid_post", "blocks.1.hook_mlp_out"]
    seen: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(x, hook):
            seen[name] = x.clone()
            return x

        return hook

    def run():
        with tiny_bridge.hooks(fwd_hooks=[(n, keep(n)) for n in names]), torch.inference_mode():
            tiny_bridge(ids)
        return [seen[n] for n in names]

    def module_hooks():
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in tiny_bridge.modules())

    mid0, post0, mlp0 = run()
    before = module_hooks()
    spec = SteeringSpec(layers=(1,), alpha=0.5, tau=2.0, site="resid_mid")
    with steer(tiny_bridge, spec, directions) as stats:
        mid1, post1, mlp1 = run()
    nudge = 0.5 * 2.0 * directions.unit(1)
    torch.testing.assert_close(mid1, mid0 + nudge)
    torch.testing.assert_close(post1, mid1 + mlp1)
    # the nudge is in the stream the block passes on (before the fix it was not: post1 - post0
    # was the MLP's change alone)
    torch.testing.assert_close(post1 - post0, nudge + (mlp1 - mlp0))
    assert not torch.allclose(post1 - post0, mlp1 - mlp0)
    assert stats.fired[1] == ids.shape[1]
    assert n_hooks(tiny_bridge) == 0 and module_hooks() == before
    no_op = SteeringSpec(layers=(1,), alpha=0.0, tau=2.0, site="resid_mid")
    with steer(tiny_bridge, no_op, directions):
        assert torch.equal(run()[1], post0)  # alpha 0: bit-identical


def test_condition_fires_only_below_tau(tiny_bridge, directions, ids):
    _, clean = resid_states(tiny_bridge, ids, [1])
    cos = torch.cosine_similarity(clean[1][0], directions.vector(1)[None], dim=-1)
    tau = float(cos.median())
    spec = SteeringSpec(layers=(1,), alpha=0.5, tau=tau, alpha_units="absolute")
    with steer(tiny_bridge, spec, directions) as stats:
        _, steered = resid_states(tiny_bridge, ids, [1])
    fired = (steered[1] != clean[1]).any(-1)[0]
    assert torch.equal(fired, cos < tau)
    assert stats.fired[1] == int((cos < tau).sum())


def test_tau_above_one_fires_on_every_generated_token(tiny_bridge, directions):
    prompts = encode_prompts(tiny_bridge.tokenizer, QUESTIONS)
    spec = SteeringSpec(layers=(1, 2), alpha=0.3, tau=1.5)
    with steer(tiny_bridge, spec, directions) as stats:
        out = decode(tiny_bridge, prompts, GenerationConfig(max_new_tokens=10, batch_size=3))
    for c in out:
        # every generated token that was fed back (all but the last) at both layers
        assert c.interventions == 2 * (len(c.tokens) - 1)
        assert c.steered_steps == tuple(range(len(c.tokens) - 1))
    assert stats.rate() == 1.0


@pytest.mark.parametrize("tau", [1.5, 0.0])
def test_steered_kv_cache_equals_no_cache_and_batch_equals_single(tiny_bridge, directions, tau):
    prompts = encode_prompts(tiny_bridge.tokenizer, QUESTIONS)
    spec = SteeringSpec(layers=(1,), alpha=2.0, tau=tau)
    runs = {}
    for name, cfg in {
        "cached": GenerationConfig(max_new_tokens=12, batch_size=3),
        "plain": GenerationConfig(max_new_tokens=12, batch_size=3, use_kv_cache=False),
        "single": GenerationConfig(max_new_tokens=12, batch_size=1),
    }.items():
        with steer(tiny_bridge, spec, directions):
            runs[name] = decode(tiny_bridge, prompts, cfg)
    unsteered = decode(tiny_bridge, prompts, GenerationConfig(max_new_tokens=12, batch_size=3))
    tokens = {k: [c.tokens for c in v] for k, v in runs.items()}
    assert tokens["cached"] == tokens["plain"] == tokens["single"]
    assert [c.interventions for c in runs["cached"]] == [c.interventions for c in runs["plain"]]
    if tau > 1:
        assert tokens["cached"] != [c.tokens for c in unsteered]  # steering did something


def test_prompt_positions_are_not_steered_by_default(tiny_bridge, directions):
    prompts = encode_prompts(tiny_bridge.tokenizer, QUESTIONS[:1])
    free = decode(tiny_bridge, prompts, GenerationConfig(max_new_tokens=1))
    with steer(tiny_bridge, SteeringSpec(layers=(1,), alpha=5.0, tau=1.5), directions):
        one = decode(tiny_bridge, prompts, GenerationConfig(max_new_tokens=1))
    with steer(
        tiny_bridge, SteeringSpec(layers=(1,), alpha=5.0, tau=1.5, positions="all"), directions
    ):
        all_pos = decode(tiny_bridge, prompts, GenerationConfig(max_new_tokens=1))
    assert one[0].tokens == free[0].tokens and one[0].interventions == 0
    assert all_pos[0].interventions == len(prompts[0])


def test_exception_inside_steer_leaves_no_hook(tiny_bridge, directions):
    before = n_hooks(tiny_bridge)
    with (
        pytest.raises(RuntimeError, match="boom"),
        steer(tiny_bridge, SteeringSpec(layers=(0, 1)), directions),
    ):
        assert n_hooks(tiny_bridge) == before + 2
        raise RuntimeError("boom")
    assert n_hooks(tiny_bridge) == before


def test_bad_specs_are_refused(tiny_bridge, directions):
    other = LayerDirections(
        layers=(0,),
        success_mean=torch.zeros(1, 32),
        failure_mean=torch.ones(1, 32),
        mean_norm=torch.ones(1),
        n_success=5,
        n_failure=5,
    )
    with (
        pytest.raises(WorkbenchError, match="width 32"),
        steer(tiny_bridge, SteeringSpec(layers=(0,)), other),
    ):
        pass
    with (
        pytest.raises(WorkbenchError, match="do not exist"),
        steer(tiny_bridge, SteeringSpec(layers=(9,)), directions),
    ):
        pass
    with pytest.raises(WorkbenchError, match="unknown update rule"):
        SteeringSpec(layers=(0,), rule="nope")


def test_continuous_batching_under_steering_equals_one_by_one(tiny_bridge, directions):
    prompts = encode_prompts(tiny_bridge.tokenizer, MANY)
    spec = SteeringSpec(layers=(1,), alpha=2.0, tau=0.0)
    runs = {}
    for batch_size in (1, 3):
        with steer(tiny_bridge, spec, directions):
            cfg = GenerationConfig(max_new_tokens=16, batch_size=batch_size)
            runs[batch_size] = decode(tiny_bridge, prompts, cfg, stop=_third_repeat)
    assert _tokens(runs[1]) == _tokens(runs[3])
    assert [c.interventions for c in runs[1]] == [c.interventions for c in runs[3]]
    assert [c.steered_steps for c in runs[1]] == [c.steered_steps for c in runs[3]]
    assert sum(c.interventions for c in runs[3]) > 0


def _recompute_nudging_newest(
    bridge, prompt: list[int], layer: int, vec, n: int, site: str = "resid_pre"
) -> list[int]:
    """The ALS authors' decoding, written naively: no KV cache; every step recomputes the whole
    sequence and adds `vec` to the newest position's residual at `layer` only."""

    def nudge(x, hook):
        x = x.clone()
        x[:, -1] += vec.to(x.dtype)
        return x

    ids = list(prompt)
    if site == "resid_mid":  # the stream itself, not only the MLP norm's input
        edit = edit_resid_mid(bridge, [(layer, nudge)])
    else:
        edit = bridge.hooks(fwd_hooks=[(f"blocks.{layer}.hook_{site}", nudge)])
    with torch.inference_mode(), edit:
        for _ in range(n):
            logits = bridge(torch.tensor([ids]), return_type="logits")
            ids.append(int(logits[0, -1].argmax()))
    return ids[len(prompt) :]


AUTHORS = dict(layers=(1,), alpha_units="absolute", tau=2.0, site="resid_pre", positions="newest")
"""The ALS authors' update (always on, newest position, absolute alpha on the unit vector) at the
input of the tiny model's last block; alpha 0.5 changes its greedy output without saturating it."""


@pytest.mark.parametrize("use_kv_cache", [True, False])
def test_transient_newest_steering_equals_a_full_recompute(tiny_bridge, directions, use_kv_cache):
    prompts = encode_prompts(tiny_bridge.tokenizer, QUESTIONS)
    spec = SteeringSpec(**AUTHORS, alpha=0.5, persistence="transient")
    cfg = GenerationConfig(max_new_tokens=10, batch_size=2, use_kv_cache=use_kv_cache)
    with steer(tiny_bridge, spec, directions):
        got = [list(c.tokens) for c in decode(tiny_bridge, prompts, cfg)]
    unit = directions.unit(1)
    want = [_recompute_nudging_newest(tiny_bridge, p, 1, 0.5 * unit, 10) for p in prompts]
    assert got == want
    # the comparison can fail: another strength, or no nudge, gives other tokens
    assert got != [_recompute_nudging_newest(tiny_bridge, p, 1, 0.7 * unit, 10) for p in prompts]
    assert got != [_recompute_nudging_newest(tiny_bridge, p, 1, 0.0 * unit, 10) for p in prompts]
    with steer(tiny_bridge, SteeringSpec(**AUTHORS, alpha=0.5), directions):  # persistent
        kept = [list(c.tokens) for c in decode(tiny_bridge, prompts, cfg)]
    assert (kept == got) == (not use_kv_cache)  # without a cache nothing persists anyway


@pytest.mark.parametrize(
    ("layer", "site"), [(0, "resid_pre"), (1, "resid_post"), (0, "resid_mid"), (2, "resid_post")]
)
def test_transient_repair_at_every_site_equals_a_full_recompute(
    tiny_bridge, directions, layer, site
):
    """The cache repair reruns only the blocks a nudge reached (from block 0 at its input, from
    the next block at an output, a whole pass at a block's middle, nothing after the last block):
    every case decodes as the naive full recompute does, in a batch of 2 with a KV cache."""
    prompts = encode_prompts(tiny_bridge.tokenizer, QUESTIONS)
    kwargs = {**AUTHORS, "layers": (layer,), "site": site}
    spec = SteeringSpec(**kwargs, alpha=1.5, persistence="transient")
    cfg = GenerationConfig(max_new_tokens=10, batch_size=2)
    with steer(tiny_bridge, spec, directions):
        got = [list(c.tokens) for c in decode(tiny_bridge, prompts, cfg)]
    vec = 1.5 * directions.unit(layer)
    want = [_recompute_nudging_newest(tiny_bridge, p, layer, vec, 10, site) for p in prompts]
    assert got == want
    plain = [_recompute_nudging_newest(tiny_bridge, p, layer, 0 * vec, 10, site) for p in prompts]
    assert got != plain  # the nudge changed the output


@pytest.mark.parametrize("reference_first", [True, False])
def test_gated_transient_arm_shares_a_batch_with_persistent_arms(
    tiny_bridge, directions, tiny_problems, reference_first
):
    """A gated transient arm (the nudge fires on some rows of a pass, not others) decodes in one
    batch with a persistent arm steered at the same block, its hook before or after the
    persistent one's: each arm's rows as when alone."""
    from workbench.methods.cot import run_arms, run_cot

    ref = SteeringSpec(**{**AUTHORS, "tau": 0.05}, alpha=0.5, persistence="transient")
    arms = {
        "cot": None,
        "persistent": (SteeringSpec(**AUTHORS, alpha=0.5), directions),
        "reference": (ref, directions),
    }
    if reference_first:
        arms = {name: arms[name] for name in ("reference", "cot", "persistent")}
    gen = GenerationConfig(max_new_tokens=12, batch_size=5)
    together = run_arms(tiny_bridge, tiny_problems, arms, generation=gen, progress=False)
    for name, arm in arms.items():
        ctx = contextlib.nullcontext() if arm is None else steer(tiny_bridge, *arm)
        alone = run_cot(tiny_bridge, tiny_problems, generation=gen, intervention=ctx, method=name)
        assert [r["tokens"] for r in together[name]] == [r["tokens"] for r in alone], name
        assert [r["interventions"] for r in together[name]] == [r["interventions"] for r in alone]
    # the persistent arm's cached nudges matter: unsteered in the cache, its output differs
    always = SteeringSpec(**AUTHORS, alpha=0.5, persistence="transient")
    with steer(tiny_bridge, always, directions):
        transient = run_cot(tiny_bridge, tiny_problems, generation=gen, progress=False)
    assert [r["tokens"] for r in transient] != [r["tokens"] for r in together["persistent"]]
    fired = sum(r["interventions"] for r in together["reference"])
    candidates = sum(r["generated_tokens"] + 1 for r in together["reference"])
    assert 0 < fired < candidates  # the gate fired on some tokens, not all


@pytest.mark.parametrize("persistence", ["transient", "persistent"])
def test_transient_steering_keeps_the_cache_unsteered(tiny_bridge, directions, ids, persistence):
    from workbench.engine.continuous import forward_pass
    from workbench.engine.kv_cache import new_cache
    from workbench.engine.passes import PassInfo, PassRecord, TransientMarks

    mask = torch.ones_like(ids)
    spec = SteeringSpec(**AUTHORS, alpha=0.5, persistence=persistence)
    caches, logits = {}, {}
    for name in ("plain", "steered"):
        cache = new_cache(tiny_bridge)
        info = PassInfo.whole_sequence(1, ids.shape[1], ids.device)
        record = PassRecord.zeros(1, ids.device, TransientMarks())
        ctx = (
            steer(tiny_bridge, spec, directions) if name == "steered" else contextlib.nullcontext()
        )
        with torch.inference_mode(), ctx:
            logits[name] = forward_pass(tiny_bridge, ids, mask, cache, info, record)
        caches[name] = [layer.keys.clone() for layer in cache.layers]
    assert not torch.equal(logits["plain"], logits["steered"])  # the nudge reached the logits
    # the refill recomputes the last position on its own: equal up to float rounding
    gap = max(float((a - b).abs().max()) for a, b in zip(*caches.values(), strict=True))
    assert (gap < 1e-5) == (persistence == "transient"), gap


@pytest.mark.parametrize("do_sample", [False, True])
def test_arms_in_one_decode_equal_each_arm_alone(tiny_bridge, directions, tiny_problems, do_sample):
    from workbench.methods.cot import run_arms, run_cot

    arms = {
        "cot": None,
        "als-a": (SteeringSpec(layers=(1,), alpha=2.0, tau=0.0), directions),
        "als-b": (SteeringSpec(layers=(2,), alpha=1.0, tau=2.0), directions),
        "reference": (SteeringSpec(**AUTHORS, alpha=0.5, persistence="transient"), directions),
    }
    gen = GenerationConfig(max_new_tokens=12, batch_size=5, do_sample=do_sample, temperature=1.0)
    together = run_arms(tiny_bridge, tiny_problems, arms, generation=gen, progress=False)
    for name, arm in arms.items():
        ctx = contextlib.nullcontext() if arm is None else steer(tiny_bridge, *arm)
        alone = run_cot(tiny_bridge, tiny_problems, generation=gen, intervention=ctx, method=name)
        assert [r["tokens"] for r in together[name]] == [r["tokens"] for r in alone], name
        assert [r["interventions"] for r in together[name]] == [r["interventions"] for r in alone]
        assert all(r["method"] == name for r in together[name])
    assert sum(r["interventions"] for r in together["cot"]) == 0
    assert sum(r["interventions"] for r in together["als-a"]) > 0
    assert [r["tokens"] for r in together["als-a"]] != [r["tokens"] for r in together["cot"]]


@pytest.mark.parametrize("do_sample", [False, True])
def test_jobs_on_different_problems_equal_each_alone(
    tiny_bridge, directions, tiny_problems, do_sample
):
    from workbench.methods.cot import Job, run_cot, run_jobs

    arm = (SteeringSpec(layers=(1,), alpha=2.0, tau=0.0), directions)
    jobs = {
        "first": Job(tiny_problems[:3], method="cot"),
        "rest": Job(tiny_problems[3:], method="cot"),
        "steered": Job(tiny_problems[1:4], arm, method="als"),
    }
    gen = GenerationConfig(max_new_tokens=12, batch_size=4, do_sample=do_sample, temperature=1.0)
    together = run_jobs(tiny_bridge, jobs, generation=gen, progress=False)
    for name, job in jobs.items():
        ctx = contextlib.nullcontext() if job.arm is None else steer(tiny_bridge, *job.arm)
        alone = run_cot(tiny_bridge, job.problems, generation=gen, intervention=ctx)
        assert [r["tokens"] for r in together[name]] == [r["tokens"] for r in alone], name
        assert [r["id"] for r in together[name]] == [p.id for p in job.problems]
        assert all(r["method"] == job.method for r in together[name])
    assert sum(r["interventions"] for r in together["steered"]) > 0


def test_arms_resume_each_from_its_own_file(tiny_bridge, directions, tiny_problems, tmp_path):
    from workbench.core.artifacts import read_jsonl
    from workbench.methods.cot import run_arms

    arms = {"cot": None, "als": (SteeringSpec(layers=(1,), alpha=2.0, tau=0.0), directions)}
    outs = {name: tmp_path / f"{name}.jsonl" for name in arms}
    gen = GenerationConfig(max_new_tokens=8, batch_size=3)
    full = run_arms(tiny_bridge, tiny_problems, arms, generation=gen, outs=outs, progress=False)
    kept = read_jsonl(outs["als"])[:2]
    outs["als"].unlink()
    outs["als"].write_text("".join(json.dumps(r) + "\n" for r in kept))
    before = outs["cot"].stat().st_mtime_ns
    again = run_arms(tiny_bridge, tiny_problems, arms, generation=gen, outs=outs, progress=False)
    assert outs["cot"].stat().st_mtime_ns == before  # nothing of the CoT arm decoded again
    assert [r["tokens"] for r in again["als"]] == [r["tokens"] for r in full["als"]]
    assert len(read_jsonl(outs["als"])) == len(tiny_problems)


def test_row_restricted_steering_needs_a_decode_step(tiny_bridge, directions, ids):
    spec = SteeringSpec(layers=(1,), alpha=2.0, tau=2.0)
    with (
        pytest.raises(WorkbenchError, match="needs the decode step"),
        steer(tiny_bridge, spec, directions, rows=[0]),
        torch.inference_mode(),
    ):
        tiny_bridge(ids)


def test_json_gate_suppresses_the_nudge_exactly_where_the_partial_object_stops_parsing(
    tiny_bridge, directions
):
    """ALS-Gated on planted generations: rows whose text from the first "{" closes into valid
    JSON (or that have no "{", or are within their first five tokens) are nudged; the others
    are not, though the cosine gate (always on here) would."""
    from workbench.core.json_answer import json_gate_open
    from workbench.engine.teacher_forced import teacher_forced

    tok = tiny_bridge.tokenizer
    texts = [  # no spaces: the char tokenizer drops them when decoding
        '{"thought":"Step1"',  # parses once closed: open
        '{"thought":"Step',  # mid-string: shut
        "nobraceatall,thinking",  # open
        '{"a',  # shut, but only 3 tokens generated: open
        '{"thought":"ok","final":12',  # open
        '{"thought":"ok",',  # shut
    ]
    generated = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert [tok.decode(g) for g in generated] == texts
    want = [json_gate_open(t, len(g)) for t, g in zip(texts, generated, strict=True)]
    assert want == [True, False, True, True, True, False]
    ids = torch.tensor([encode_prompts(tok, ["What is 2+2?"])[0]] * len(texts))
    for gate in (True, False):
        spec = SteeringSpec(**AUTHORS, alpha=0.5, json_gate=gate)
        with (
            steer(tiny_bridge, spec, directions),
            teacher_forced(tiny_bridge, len(texts), ids.shape[1], generated=generated) as record,
        ):
            tiny_bridge(ids, return_type="logits")
        fired = [bool(n) for n in record.counts.tolist()]
        assert fired == (want if gate else [True] * len(texts))


def test_json_gate_outside_decode_is_a_clear_error(tiny_bridge, directions, ids):
    spec = SteeringSpec(**AUTHORS, alpha=0.5, json_gate=True)
    with (
        pytest.raises(WorkbenchError, match="steer inside `decode`"),
        torch.inference_mode(),
        steer(tiny_bridge, spec, directions),
    ):
        tiny_bridge(ids)
