"""`python -m workbench` is the `als` command."""

import sys

from workbench.cli import main

sys.exit(main())
