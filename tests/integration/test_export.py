"""`als export --format gguf`: llama.cpp control vectors, read back with the `gguf` package, with
llama.cpp's layer numbering (``direction.N`` is added to the output of block N, counted from 0)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from workbench.cli.main import main
from workbench.core.directions import LayerDirections
from workbench.core.grading import Verdict
from workbench.core.prompts import encode_prompts
from workbench.core.steering import SteeringSpec, steer
from workbench.engine.config import GenerationConfig
from workbench.errors import WorkbenchError
from workbench.experiment.pipeline import ALSRunConfig, run_als
from workbench.experiment.rundir import RunDir
from workbench.interop.export import (
    control_vector_index,
    read_control_vector,
    steering_vectors,
    write_control_vector,
)
from workbench.methods import cot


def _directions(n_layers: int, d: int) -> LayerDirections:
    g = torch.Generator().manual_seed(1)
    return LayerDirections(
        layers=tuple(range(n_layers)),
        success_mean=torch.randn(n_layers, d, generator=g),
        failure_mean=torch.randn(n_layers, d, generator=g),
        mean_norm=torch.arange(1, n_layers + 1, dtype=torch.float32),
        n_success=3,
        n_failure=3,
    )


def test_index_follows_llama_cpp():
    assert control_vector_index(5, "resid_post") == 5
    assert control_vector_index(5, "resid_pre") == 4
    with pytest.raises(WorkbenchError, match="cannot reach"):
        control_vector_index(0, "resid_post")
    with pytest.raises(WorkbenchError, match="cannot reach"):
        control_vector_index(1, "resid_pre")
    with pytest.raises(WorkbenchError, match="no equivalent"):
        control_vector_index(3, "resid_mid")


def test_gguf_reads_back_with_metadata_and_scaled_vectors(tmp_path):
    directions = _directions(4, 16)
    spec = SteeringSpec(layers=(1, 3), alpha=0.5, tau=0.2)  # relative: x mean norm 2 and 4
    vectors = steering_vectors(directions, spec, scale=-2.0)
    path = write_control_vector(
        tmp_path / "cv.gguf", vectors, site="resid_post", model_hint="qwen2"
    )
    meta, read = read_control_vector(path)
    assert meta == {
        "general.architecture": "controlvector",
        "controlvector.model_hint": "qwen2",
        "controlvector.layer_count": 2,
    }
    assert sorted(read) == [1, 3]
    for layer, norm in ((1, 2.0), (3, 4.0)):
        expected = -2.0 * 0.5 * norm * directions.unit(layer)
        torch.testing.assert_close(torch.from_numpy(read[layer]), expected)
    later = {layer + 1: v for layer, v in vectors.items()}  # layers 2 and 4 at resid_pre
    pre = write_control_vector(tmp_path / "pre.gguf", later, site="resid_pre", model_hint="x")
    assert sorted(read_control_vector(pre)[1]) == [1, 3]


def test_non_additive_rules_and_unfit_layers_are_refused():
    directions = _directions(2, 8)
    with pytest.raises(WorkbenchError, match="only 'additive'"):
        steering_vectors(directions, SteeringSpec(layers=(1,), rule="norm_preserving"))
    with pytest.raises(WorkbenchError, match="no direction was fit at layers \\[5\\]"):
        steering_vectors(directions, SteeringSpec(layers=(5,)))


def test_block_n_output_is_our_resid_post_n(tiny_bridge, tiny_dir):
    """What llama.cpp does with direction.N (add it to the output of decoder block N of the
    Hugging Face layer list, every position) equals our steering at layer N, resid_post, when the
    gate always fires on every position: the same logits."""
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32).eval()
    directions = _directions(tiny_bridge.cfg.n_layers, tiny_bridge.cfg.d_model)
    spec = SteeringSpec(layers=(1,), alpha=3.0, tau=2.0, positions="all")
    vector = steering_vectors(directions, spec)[1]
    index = control_vector_index(1, "resid_post")
    ids = torch.tensor([encode_prompts(tiny_bridge.tokenizer, ["What is 2+2?"])[0]])

    def add_at_block_output(module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        hidden = hidden + vector
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    handle = hf.model.layers[index].register_forward_hook(add_at_block_output)
    try:
        with torch.inference_mode():
            theirs = hf(ids).logits
    finally:
        handle.remove()
    with torch.inference_mode(), steer(tiny_bridge, spec, directions):
        ours = tiny_bridge(ids)
    with torch.inference_mode():
        plain = tiny_bridge(ids)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(plain, ours, atol=1e-2)


@pytest.fixture
def finished_run(tiny_bridge, tmp_path, monkeypatch):
    def grade(text, gold, family, answer_format="boxed"):
        return Verdict(predicted="0", correct=sum(map(ord, gold)) % 2 == 0, method="boxed")

    monkeypatch.setattr(cot, "grade", grade)
    cfg = ALSRunConfig(n_fit=12, n_val=4, n_test=4, alphas=(0.2,), n_candidate_layers=1)
    run_als(tiny_bridge, tmp_path, cfg, generation=GenerationConfig(max_new_tokens=4, batch_size=4))
    return RunDir(tmp_path)


def test_cli_exports_the_selected_steering(finished_run, capsys, monkeypatch):
    monkeypatch.setattr("workbench.sources.models.model_type", lambda name: "qwen2")
    spec = replace(finished_run.steering(), layers=(1, 2))
    assert main(["export", str(finished_run.root), "--scale", "0.5", "--layers", "1,2"]) == 0
    out = finished_run.root / "export" / "control-vector.gguf"
    assert str(out) in capsys.readouterr().out
    meta, vectors = read_control_vector(out)
    assert meta["controlvector.model_hint"] == "qwen2"
    expected = steering_vectors(finished_run.directions(), spec, scale=0.5)
    assert sorted(vectors) == sorted(spec.layers)
    for layer, v in expected.items():
        torch.testing.assert_close(torch.from_numpy(vectors[layer]), v)


def test_cli_refuses_layer_zero_in_one_line(finished_run, capsys):
    assert main(["export", str(finished_run.root), "--layers", "0", "--model_hint", "q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot reach" in err and "\n" not in err


def test_lm_eval_steered_model_reproduces_our_static_steering(tiny_bridge, tiny_dir, tmp_path):
    """lm-eval's built-in `steered` model, given our exported file, computes the logits of our
    steering at the same layers with the gate always open, at every position."""
    from lm_eval.models.hf_steered import SteeredModel

    from workbench.interop.export import write_lm_eval_steering

    directions = _directions(tiny_bridge.cfg.n_layers, tiny_bridge.cfg.d_model)
    spec = SteeringSpec(layers=(0, 2), alpha=2.0, tau=2.0, positions="all")
    path = write_lm_eval_steering(
        tmp_path / "steer.pt", steering_vectors(directions, spec), site="resid_post"
    )
    lm = SteeredModel(pretrained=str(tiny_dir), steer_path=str(path), device="cpu", dtype="float32")
    ids = torch.tensor([encode_prompts(tiny_bridge.tokenizer, ["What is 2+2?"])[0]])
    with torch.inference_mode():
        theirs = lm._model_call(ids)
        with steer(tiny_bridge, spec, directions):
            ours = tiny_bridge(ids)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_cli_exports_for_lm_eval(finished_run, capsys):
    spec = replace(finished_run.steering(), layers=(2,))
    assert main(["export", str(finished_run.root), "--format", "lm-eval", "--layers", "2"]) == 0
    out = finished_run.root / "export" / "lm-eval-steer.pt"
    assert "every position" in capsys.readouterr().out
    config = torch.load(out)
    expected = steering_vectors(finished_run.directions(), spec)[2]
    assert list(config) == ["layers.2"] and config["layers.2"]["action"] == "add"
    torch.testing.assert_close(config["layers.2"]["steering_vector"], expected)
