"""`als publish`: a run folder as small, reproducible data that regenerates the run's figures
and resumes as a run folder."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

import workbench.methods.cot as cot
from workbench.core.artifacts import append_jsonl, read_jsonl
from workbench.core.grading import Verdict
from workbench.engine.config import GenerationConfig
from workbench.errors import WorkbenchError
from workbench.experiment.pipeline import ALSRunConfig, run_als
from workbench.experiment.probe_run import ProbeRunConfig, probe_run
from workbench.experiment.publish import MANIFEST, publish_run
from workbench.experiment.rundir import RunDir
from workbench.report.run_report import run_figures


@pytest.fixture
def finished_run(tiny_bridge, monkeypatch, tmp_path):
    def grade(text, gold, family, answer_format="boxed"):
        return Verdict(predicted="0", correct=sum(map(ord, gold)) % 2 == 0, method="boxed")

    monkeypatch.setattr(cot, "grade", grade)
    run = tmp_path / "run"
    cfg = ALSRunConfig(n_fit=16, n_val=2, n_test=4, alphas=(0.2,), n_candidate_layers=1)
    run_als(tiny_bridge, run, cfg, generation=GenerationConfig(max_new_tokens=5, batch_size=4))
    probe_run(tiny_bridge, run, ProbeRunConfig(n_bootstrap=20, early_ks=(1,)))
    return RunDir(run)


def _figure_data(run) -> dict:
    figs, _ = run_figures(run)
    return {name: fig.to_plotly_json() for name, fig in figs.items()}


def test_published_copy_is_small_data_that_regenerates_every_figure(finished_run, tmp_path):
    out = tmp_path / "published"
    published = publish_run(finished_run, out)
    names = set(published.files)
    assert "config.json" in names and "results.json" in names
    assert "test/cot.jsonl.gz" in names and "probe/layers.jsonl.gz" in names
    assert any(n.startswith("directions/") and n.endswith(".safetensors") for n in names)
    # no cached states, no plain JSONL, nothing the manifest does not list
    assert not any("activations" in n or n.endswith(".jsonl") for n in names)
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == names | {MANIFEST}
    manifest = json.loads((out / MANIFEST).read_text())["files"]
    for name, entry in manifest.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"]
    assert read_jsonl(out / "test" / "als.jsonl") == finished_run.rows("test", "als")
    assert _figure_data(out) == _figure_data(finished_run)


def test_publishing_twice_gives_the_same_bytes(finished_run, tmp_path):
    first = publish_run(finished_run, tmp_path / "a").files
    second = publish_run(finished_run, tmp_path / "b").files
    assert first == second


def test_a_published_copy_resumes_as_a_run_folder(finished_run, tmp_path):
    out = tmp_path / "published"
    publish_run(finished_run, out)
    rows = read_jsonl(out / "fit" / "cot.jsonl")
    extra = {**rows[0], "id": "extra"}
    append_jsonl(out / "fit" / "cot.jsonl", [extra])
    assert read_jsonl(out / "fit" / "cot.jsonl") == [*rows, extra]
    # the gzipped table is left as it was published; the plain one now wins, and is published
    packed = gzip.decompress((out / "fit" / "cot.jsonl.gz").read_bytes()).decode()
    assert len(packed.splitlines()) == len(rows)
    publish_run(out, tmp_path / "again")
    assert read_jsonl(tmp_path / "again" / "fit" / "cot.jsonl") == [*rows, extra]


def test_publish_refuses_a_non_run_and_its_own_folder(finished_run, tmp_path):
    with pytest.raises(WorkbenchError, match="not a run folder"):
        publish_run(tmp_path / "nothing", tmp_path / "out")
    with pytest.raises(WorkbenchError, match="outside the run"):
        publish_run(finished_run, finished_run.root / "results")
