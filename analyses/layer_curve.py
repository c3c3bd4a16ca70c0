"""Cross-validated AUROC by layer with bootstrap CIs and the shuffled-label control.

python analyses/layer_curve.py --run runs/als-gsm8k  # -> figures/layer_curve.html, .png
"""

import sys

from _figure import main

if __name__ == "__main__":
    sys.exit(main("probe_auroc", "layer_curve", "als probe RUN", __doc__.splitlines()[0]))
