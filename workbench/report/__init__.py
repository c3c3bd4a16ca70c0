"""Figures and the HTML report: figure builders (`plotting`, `sweep_plots`: tidy rows in, plotly
figure out, no I/O), the page (`html`), and the report stage (`run_report`), which rebuilds a run's
figures and report from what its folder holds. The only layer that imports plotly."""
