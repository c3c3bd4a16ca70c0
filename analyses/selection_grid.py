"""Validation grid: every (layer, alpha, tau quantile) condition's accuracy against CoT, 95% CIs.

python analyses/selection_grid.py --run runs/als-gsm8k  # -> figures/selection_grid.html, .png
"""

import sys

from _figure import main

if __name__ == "__main__":
    sys.exit(main("selection_grid", "selection_grid", "als run", __doc__.splitlines()[0]))
