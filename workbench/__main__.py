"""`python -m workbench` is the `als` command."""

import sys

from workbench.cli.main import main

sys.exit(main())
