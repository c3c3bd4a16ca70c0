"""Figure builders: a small tidy table in, the expected traces out (no I/O)."""

from __future__ import annotations

from workbench.report.plotting import (
    accuracy_bars,
    agreement_heatmap,
    cosine_heatmap,
    early_curve,
    frontier,
    layer_curve,
    pca_scatter,
    selection_grid,
    trajectory_plot,
)


def test_layer_curve_has_a_line_and_a_band_per_metric():
    rows = [
        {"layer": layer, "metric": m, "value": 0.5, "ci_low": 0.4, "ci_high": 0.6}
        for layer in range(3)
        for m in ("auroc", "auroc_shuffled")
    ]
    fig = layer_curve(rows)
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["auroc", "auroc_shuffled"]
    assert len(fig.data) == 4 and list(lines[0].x) == [0, 1, 2]


def test_trajectory_plot_marks_fired_steps():
    bands = [
        {"group": g, "step": s, "mean": 0.1, "ci_low": 0.0, "ci_high": 0.2}
        for g in ("CoT correct", "ALS (steered)")
        for s in range(4)
    ]
    fig = trajectory_plot(bands, fired=[{"step": 2, "mean": 0.1, "rate": 0.5}], tau=0.05)
    names = [t.name for t in fig.data if t.name]
    assert names == ["CoT correct", "ALS (steered)", "steering fired"]
    assert list(fig.data[-1].x) == [2]


def test_other_builders():
    acc = [
        {
            "method": m,
            "n": 10,
            "accuracy": 0.3,
            "ci_low": 0.1,
            "ci_high": 0.6,
            "seconds_per_problem": 1.0 + i,
        }
        for i, m in enumerate(("cot", "als"))
    ]
    assert list(accuracy_bars(acc).data[0].x) == ["cot", "als"]
    assert [t.name for t in frontier(acc).data] == ["cot", "als"]
    fewer = [acc[0], {**acc[1], "n": 4}]  # a method run on fewer problems says so
    assert [t.name for t in frontier(fewer).data] == ["cot", "als (n=4)"]
    assert cosine_heatmap([[1, 0], [0, 1]], [3, 7]).data[0].x == (3, 7)
    early = [{"layer": 5, "k": k, "value": 0.6, "ci_low": 0.5, "ci_high": 0.7} for k in (1, "all")]
    assert list(early_curve(early).data[0].x) == ["1", "all"]
    pts = [{"x": 0, "y": 1, "group": "fit correct"}, {"x": 1, "y": 0, "group": "fit incorrect"}]
    fig = pca_scatter(pts, [{"x": 0.5, "y": 0.5, "label": "success centroid"}])
    assert [t.name for t in fig.data] == ["fit correct", "fit incorrect", "success centroid"]
    verdicts = [
        {"method": m, "id": i, "correct": c}
        for m, cs in (("a", [1, 0]), ("b", [1, 1]))
        for i, c in enumerate(cs)
    ]
    assert agreement_heatmap(verdicts).data[0].z[0][1] == 0.5


def test_selection_grid_has_a_point_per_condition_a_colour_per_layer_and_cot_as_a_band():
    def acc(a, **extra):
        return {"accuracy": a, "ci_low": a - 0.1, "ci_high": a + 0.1, "n": 64, **extra}

    grid = [
        acc(0.3, layer=ly, alpha=a, tau_quantile=q)
        for ly in (15, 16)
        for a in (0.1, 0.2)
        for q in (0.5, 1.0)
    ]
    fig = selection_grid(acc(0.25, method="cot"), grid, acc(0.2, method="random-control"))
    points = [t for t in fig.data if t.mode == "markers"]
    assert [t.name for t in points] == ["layer 15", "layer 16", "random direction"]
    assert list(points[0].x) == [
        "L15 a0.1 q0.5",
        "L15 a0.1 always",
        "L15 a0.2 q0.5",
        "L15 a0.2 always",
    ]
    assert list(points[2].x) == ["random control"] and list(points[2].y) == [0.2]
    cot = next(t for t in fig.data if t.mode == "lines")
    assert set(cot.y) == {0.25} and len(cot.x) == len(grid) + 1


def test_accuracy_labels_sit_above_the_error_bars():
    rows = [
        {"method": m, "n": 400, "correct": c, "accuracy": c / 400, "ci_low": lo, "ci_high": hi}
        for m, c, lo, hi in (("cot", 111, 0.236, 0.323), ("als", 104, 0.219, 0.305))
    ]
    fig = accuracy_bars(rows)
    assert not fig.data[0].text  # nothing written on the bars or their caps
    labels = fig.layout.annotations
    assert [a.text for a in labels] == ["0.278 (111/400)", "0.260 (104/400)"]
    for label, row in zip(labels, rows, strict=True):  # each anchored at its interval's top cap
        assert (label.x, label.y, label.yanchor) == (row["method"], row["ci_high"], "bottom")
        assert label.yshift > 0


def test_router_frontier_draws_routers_as_lines_and_leaves_out_untimed_arms():
    from workbench.report.contrast_plots import router_frontier

    def row(method, seconds, budget=None):
        acc = {"accuracy": 0.3, "ci_low": 0.2, "ci_high": 0.4, "tokens_per_problem": 300}
        return {"method": method, "seconds_per_problem": seconds, "budget": budget, **acc}

    table = [row("cot", 1.0), row("als", None), row("router@0.5", 2.0, 0.5)]
    table += [row("router@0.1", 1.2, 0.1), row("router-random@0.5", 2.1, 0.5)]
    fig = router_frontier(table, cost="seconds_per_problem")
    names = [t.name for t in fig.data]
    assert names == ["difficulty router", "random router", "cot"]  # "als" has no seconds
    assert list(fig.data[0].x) == [1.2, 2.0]  # the router's budgets in order of cost
    assert "als" in [t.name for t in router_frontier(table).data]  # it has tokens


def test_contrast_probe_curves_draw_the_within_controls_as_levels():
    from workbench.report.contrast_plots import contrast_probe_curves

    rows = [
        {"layer": layer, "metric": m, "value": 0.6, "ci_low": 0.55, "ci_high": 0.65, "n": 10}
        for layer in (0, 1, 2)
        for m in ("auroc_pooled", "auroc_within", "auroc_within_of_pooled", "spearman_pass_rate")
    ]
    controls = [
        {"layer": None, "metric": f"auroc_{kind}_of_{c}", "value": v, "ci_low": 0, "ci_high": 1}
        for kind in ("pooled", "within")
        for c, v in (("length", 0.557), ("tokens", 0.621))
    ]
    fig = contrast_probe_curves(rows, controls=controls)
    levels = [t for t in fig.data if t.name and t.name.startswith("control:")]
    assert [t.name for t in levels] == [
        "control: chain length, within-problem AUROC 0.557",
        "control: bag of tokens, within-problem AUROC 0.621",
    ]
    assert all(list(t.x) == [0, 2] for t in levels)
    assert list(levels[1].y) == [0.621, 0.621]
