"""Efficiency-accuracy frontier of CoT, SC@k, LatentSeek and ALS.

python analyses/frontier.py --run runs/als-gsm8k  # -> figures/frontier.html, .png
"""

import sys

from _figure import main

if __name__ == "__main__":
    sys.exit(main("compare_frontier", "frontier", "als compare RUN", __doc__.splitlines()[0]))
