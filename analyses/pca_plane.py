"""Per-problem states and both centroids in the fit split's PCA plane.

python analyses/pca_plane.py --run runs/als-gsm8k  # -> figures/pca_plane.html, .png
"""

import sys

from _figure import main

if __name__ == "__main__":
    sys.exit(main("probe_pca", "pca_plane", "als probe RUN", __doc__.splitlines()[0]))
