"""LatentSeek on the tiny model with planted rewards: the loss falls, the weights never change,
gradients reach only the latents, the caps and early stop hold, and passes are counted."""

from __future__ import annotations

import pytest
import torch

from workbench.core.prompts import encode_prompts
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.methods.latentseek import LatentSeekConfig, final_states, latentseek

M = 20  # tokens of every answer (the tiny model never emits EOS, and never boxes an answer)


@pytest.fixture
def start(tiny_bridge):
    prompt = encode_prompts(tiny_bridge.tokenizer, ["What is 12 + 30?"])[0]
    gen = GenerationConfig(max_new_tokens=M)
    return prompt, decode(tiny_bridge, [prompt], gen)[0], gen


def test_constant_bad_reward_runs_to_the_cap_and_lowers_the_loss(tiny_bridge, start):
    prompt, initial, gen = start
    weights = {k: v.clone() for k, v in tiny_bridge.original_model.state_dict().items()}
    cfg = LatentSeekConfig(rho=0.5, max_iters=4, lr=0.1)
    res = latentseek(tiny_bridge, prompt, initial, lambda text: (-1.0, 0, 0), cfg, generation=gen)
    assert res.iterations == res.backward_passes == 4 and len(res.rewards) == 5
    assert res.losses[-1] < res.losses[0]
    k = int(0.5 * M)
    assert res.forward_passes == M + 1 + 4 * (M - k)  # initial answer, state capture, 4 re-answers
    assert res.generated_tokens == M + 4 * (M - k) and len(res.tokens) == M
    after = tiny_bridge.original_model.state_dict()
    assert all(torch.equal(weights[k], after[k]) for k in weights)
    assert all(p.grad is None for p in tiny_bridge.original_model.parameters())


def test_early_stop_when_the_reward_passes(tiny_bridge, start):
    prompt, initial, gen = start
    rewards = iter([-1.0, 0.0, -1.0])
    res = latentseek(
        tiny_bridge,
        prompt,
        initial,
        lambda text: (next(rewards), 0, 0),
        LatentSeekConfig(rho=0.5),
        generation=gen,
    )
    assert res.iterations == 1 and res.rewards == [-1.0, 0.0]


def test_good_first_answer_is_kept(tiny_bridge, start):
    prompt, initial, gen = start
    res = latentseek(tiny_bridge, prompt, initial, lambda text: (0.0, 0, 0), generation=gen)
    assert res.iterations == 0 and res.tokens == list(initial.tokens)


def test_latents_are_the_states_that_made_the_answer(tiny_bridge, start):
    prompt, initial, _ = start
    z = final_states(tiny_bridge, prompt, list(initial.tokens))
    logits = z @ tiny_bridge.W_U + tiny_bridge.b_U
    assert logits.argmax(-1).tolist() == list(initial.tokens)  # greedy: each state's argmax
