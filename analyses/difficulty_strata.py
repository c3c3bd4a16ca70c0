"""The fit probe beyond difficulty: AUROC within strata of a sampled pass rate, by layer.

python analyses/difficulty_strata.py --run results/gsm8k-1.5b  # -> figures/difficulty_strata.*
Reads the run's `probe/difficulty` table (`als probe RUN --probe.fit_only true
--probe.difficulty_from SAMPLES`); decodes nothing.
"""

import sys

from _figure import main

if __name__ == "__main__":
    sys.exit(
        main(
            "probe_difficulty",
            "difficulty_strata",
            "als probe RUN --probe.difficulty_from SAMPLES",
            __doc__.splitlines()[0],
        )
    )
