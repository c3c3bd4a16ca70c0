"""Per-problem agreement between methods.

python analyses/method_agreement.py --run runs/als-gsm8k  # -> figures/method_agreement.html, .png
"""

import sys

from _figure import main

if __name__ == "__main__":
    sys.exit(
        main("compare_agreement", "method_agreement", "als compare RUN", __doc__.splitlines()[0])
    )
