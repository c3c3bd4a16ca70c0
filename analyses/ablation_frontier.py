"""Accuracy against generated tokens per problem for every sweep condition, with CoT.

python analyses/ablation_frontier.py --run runs/als-gsm8k  # -> figures/ablation_frontier.html, .png
"""

import sys

from _figure import main

if __name__ == "__main__":
    sys.exit(main("sweep_frontier", "ablation_frontier", "als sweep RUN", __doc__.splitlines()[0]))
