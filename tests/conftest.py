"""Shared fixtures: a tiny random Qwen2 bridge built in code (no download), seeding, and
run-time checks of the jaxtyping shapes on the library's tensor boundaries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from jaxtyping import install_import_hook

# jaxtyping shapes checked at run time (beartype) in every library module that annotates tensor
# boundaries; installed before any test imports the library. Only those modules: elsewhere the
# tests pass wrong values on purpose to check the one-line errors.
_ROOT = Path(__file__).parents[1]
_TYPED = sorted(
    ".".join(path.relative_to(_ROOT).with_suffix("").parts)
    for path in (_ROOT / "workbench").rglob("*.py")
    if "from jaxtyping import" in path.read_text()
)
install_import_hook(_TYPED, "beartype.beartype")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ALS_PNG", "0")  # PNG export costs seconds per figure; tested on its own


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory):
    from workbench.sources.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"), n_layers=3, d_model=64)


@pytest.fixture(scope="session")
def tiny_bridge(tiny_dir):
    from workbench.sources.models import ModelConfig, load_model

    return load_model(ModelConfig(name=str(tiny_dir), device="cpu", dtype="float32"))


@pytest.fixture(scope="session")
def tiny_llama_bridge():
    from workbench.sources.models import ModelConfig, load_model

    return load_model(ModelConfig(name="random:tiny-llama", device="cpu", dtype="float32"))


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def family_bridge(request, tiny_bridge, tiny_llama_bridge):
    """The tiny Qwen2 and the tiny Llama in turn (decoding paths checked on both families)."""
    return tiny_bridge if request.param == "qwen2" else tiny_llama_bridge


@pytest.fixture
def tiny_problems():
    from workbench.sources.data import Problem

    questions = [
        "1+1?",
        "What is 12 times 3, minus 4?",
        "x",
        "Tom has 3 apples. How many?",
        "9-9",
        "7",
    ]
    return [
        Problem(id=f"toy/{i}", family="gsm8k", question=q, answer=str(i))
        for i, q in enumerate(questions)
    ]
