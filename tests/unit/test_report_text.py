"""The report's words say what the data show: the selection rule with its tie-breaks, and whether
a tie decided the pick; the captions do not point at a peak the selection did not use."""

from __future__ import annotations

from workbench.core.selection import pick_best
from workbench.report.run_report import _CAPTIONS, _selection_text


def _grid(*scores: tuple[int, float, float, float]) -> list[dict]:
    return [
        {"layer": layer, "alpha": a, "tau_quantile": q, "accuracy": acc, "correct": round(acc * 8)}
        | {"n": 8, "intervention_rate": q}
        for layer, a, q, acc in scores
    ]


def _selection(grid: list[dict]) -> dict:
    return {"grid": grid, "best": pick_best(grid), "val_cot": {"accuracy": 0.25}}


def test_the_rule_and_its_tie_breaks_are_stated():
    text = _selection_text(_selection(_grid((15, 0.1, 0.5, 0.25), (15, 0.2, 1.0, 0.5))))
    assert "highest validation accuracy" in text and "ties go to the smaller alpha" in text
    best = "one condition scored best, 0.500 (4/8; CoT 0.250): layer 15, alpha 0.2, always on"
    assert best in text


def test_a_pick_made_by_the_tie_rule_says_so():
    grid = _grid((15, 0.2, 0.5, 0.25), (15, 0.1, 1.0, 0.25), (23, 0.1, 0.5, 0.25))
    text = _selection_text(_selection(grid))
    assert "all 3 conditions tie at 0.250 (2/8; CoT 0.250), so the tie rule alone chose" in text
    assert text.endswith("layer 23, alpha 0.1, tau quantile 0.5.")  # smaller alpha, fewer steps
    some = _grid((15, 0.2, 0.5, 0.5), (16, 0.1, 0.5, 0.5), (16, 0.1, 1.0, 0.25))
    assert "2 of 3 conditions tie at the best" in _selection_text(_selection(some))


def test_the_separation_caption_does_not_send_the_reader_to_its_peak():
    caption = _CAPTIONS["layer_separation"]
    assert "Look for the peak" not in caption and "cross-validated AUROC" in caption
