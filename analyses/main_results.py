"""Main result: test accuracy of every arm (CoT, ALS and any reference or control arm), 95% CIs.

python analyses/main_results.py --run runs/als-gsm8k  # -> figures/main_results.html, .png
"""

import sys

from _figure import main

if __name__ == "__main__":
    sys.exit(main("test_accuracy", "main_results", "als run", __doc__.splitlines()[0]))
