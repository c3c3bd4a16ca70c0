"""Accuracy change vs CoT per update rule, ALS direction beside its controls.

python analyses/ablation_rules.py --run runs/als-gsm8k  # -> figures/ablation_rules.html, .png
"""

import sys

from _figure import main

if __name__ == "__main__":
    sys.exit(main("sweep_rules", "ablation_rules", "als sweep RUN", __doc__.splitlines()[0]))
