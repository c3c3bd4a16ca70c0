"""The toy run's `report.html` in a real browser (headless chromium, 1400 px wide): it loads without
script errors, every figure draws, and nothing is wider than the page.

A test-only copy of the report gets two small scripts: one first in <head> that records uncaught
errors, one after load that writes the checks as JSON into <pre id=checks>; chromium prints the DOM
(`--dump-dom`) and the test reads the JSON back. The report embeds plotly.js, so this runs offline.
Skipped where no chromium is installed (`apt-get install -y chromium`, as scripts/setup.sh does).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from workbench.report.run_report import build_run_report

ROOT = Path(__file__).parents[2]
TOY = ROOT / "tests" / "data" / "published-toy-smoke"
WIDTH = 1400

_ERRORS = """<script>window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e)));
</script>"""

_CHECKS = """<pre id=checks></pre><script>
window.addEventListener('load', () => setTimeout(() => {
  const page = document.documentElement, body = document.body;
  const plots = [...document.querySelectorAll('.plotly-graph-div')];
  const tables = [...document.querySelectorAll('table')].map(t => ({
    width: t.scrollWidth, box: t.parentElement.clientWidth,
    box_scroll: t.parentElement.scrollWidth, text: t.innerText.slice(0, 60)}));
  const figures = [...document.querySelectorAll('figure')];
  document.getElementById('checks').textContent = JSON.stringify({
    errors: window.__errors, plotly: typeof Plotly,
    plots: plots.length,
    drawn: plots.filter(d => d.querySelector('svg.main-svg')).length,
    figures: figures.length,
    captioned: figures.filter(f => (f.querySelector('figcaption') || {}).innerText).length,
    wider_than_box: figures.filter(f => f.scrollWidth > f.clientWidth).length,
    page: [page.scrollWidth, page.clientWidth], body: [body.scrollWidth, body.clientWidth],
    tables: tables, cells: [...document.querySelectorAll('td')].map(td => td.innerText),
    verdict: (document.querySelector('.summary .verdict') || {}).innerText || '',
    first_heading: (document.querySelector('h2') || {}).innerText || ''});
}, 500));
</script>"""


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)


def browser_checks(report: Path, work: Path) -> dict:
    """Open a test-only copy of `report` in headless chromium; the checks it wrote, as a dict."""
    page = report.read_text(encoding="utf-8")
    page = page.replace("<meta charset='utf-8'>", "<meta charset='utf-8'>" + _ERRORS, 1)
    page = page.replace("</body>", _CHECKS + "</body>", 1)
    copy = work / "report-checked.html"
    copy.write_text(page, encoding="utf-8")
    argv = [
        _chromium() or "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={work / 'profile'}",
        f"--window-size={WIDTH},2000",
        "--virtual-time-budget=10000",
        "--dump-dom",
        copy.as_uri(),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)
    found = re.search(r"<pre id=\"checks\">(.*?)</pre>", done.stdout, re.S)
    assert found and found.group(1), f"no checks in the page (chromium: {done.stderr[-2000:]})"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if _chromium() is None:
        pytest.skip("no chromium on PATH (apt-get install -y chromium, as scripts/setup.sh does)")
    work = tmp_path_factory.mktemp("report-browser")
    run = work / "toy-run"
    shutil.copytree(TOY, run)
    return browser_checks(build_run_report(run), work)


def test_report_loads_without_script_errors(checks):
    assert checks["errors"] == [] and checks["plotly"] == "object", checks["errors"]


def test_every_figure_draws_and_has_a_caption(checks):
    assert checks["plots"] >= 5  # accuracy, separation, norm, cosines, selection grid
    assert checks["drawn"] == checks["plots"] == checks["figures"]
    assert checks["captioned"] == checks["figures"]
    assert checks["wider_than_box"] == 0


def test_nothing_is_wider_than_the_page(checks):
    page_scroll, page_client = checks["page"]
    body_scroll, body_client = checks["body"]
    assert page_scroll <= page_client == WIDTH and body_scroll <= body_client
    for table in checks["tables"]:  # the toy's tables fit their box without scrolling
        assert table["width"] <= table["box"] and table["box_scroll"] <= table["box"], table


def test_summary_first_and_tables_for_reading(checks):
    assert checks["first_heading"] == "Result"
    verdict = checks["verdict"]
    assert "20 held-out" in verdict and "McNemar p =" in verdict
    assert re.search(r"0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]", verdict)
    cells = checks["cells"]
    assert "20 stopped at the answer" in cells
    assert any(re.fullmatch(r"0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]", c) for c in cells)
    for cell in cells:  # no reprs, no raw floats, no None
        assert not re.search(r"[{}\[\]']|None|\d\.0*[1-9]\d{3,}", cell.replace("95% CI]", "")) or (
            re.fullmatch(r"0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]", cell)
        ), cell
