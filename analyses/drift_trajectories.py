"""cos(h_t, v) over decoding steps for correct, incorrect and steered generations.

python analyses/drift_trajectories.py --run runs/als-gsm8k
    # -> figures/drift_trajectories.html, .png
"""

import sys

from _figure import main

if __name__ == "__main__":
    sys.exit(
        main("probe_trajectories", "drift_trajectories", "als probe RUN", __doc__.splitlines()[0])
    )
