"""Validation accuracy over alpha x tau per layer set.

python analyses/ablation_heatmaps.py --run runs/als-gsm8k  # -> figures/ablation_heatmaps.html, .png
"""

import sys

from _figure import main

if __name__ == "__main__":
    sys.exit(main("sweep_heatmap", "ablation_heatmaps", "als sweep RUN", __doc__.splitlines()[0]))
