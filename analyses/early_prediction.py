"""AUROC from the first k generated tokens.

python analyses/early_prediction.py --run runs/als-gsm8k  # -> figures/early_prediction.html, .png
"""

import sys

from _figure import main

if __name__ == "__main__":
    sys.exit(main("probe_early", "early_prediction", "als probe RUN", __doc__.splitlines()[0]))
