"""Generated tokens, repetition, KL and entropy change at steered steps against alpha.

python analyses/ablation_by_alpha.py --run runs/als-gsm8k  # -> figures/ablation_by_alpha.html, .png
"""

import sys

from _figure import main

if __name__ == "__main__":
    sys.exit(main("sweep_by_alpha", "ablation_by_alpha", "als sweep RUN", __doc__.splitlines()[0]))
