"""Accuracy change vs CoT against intervention rate, ALS vs controls.

python analyses/ablation_deltas.py --run runs/als-gsm8k  # -> figures/ablation_deltas.html, .png
"""

import sys

from _figure import main

if __name__ == "__main__":
    sys.exit(main("sweep_deltas", "ablation_deltas", "als sweep RUN", __doc__.splitlines()[0]))
