"""Cosine similarity between layers' directions.

python analyses/direction_cosines.py --run runs/als-gsm8k  # -> figures/direction_cosines.html, .png
"""

import sys

from _figure import main

if __name__ == "__main__":
    sys.exit(main("direction_cosines", "direction_cosines", "als run", __doc__.splitlines()[0]))
