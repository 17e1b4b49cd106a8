"""`python -m jobs.cli …` (as `ray job submit` runs it) is `lavida …`."""

import sys

from jobs.cli.main import main

sys.exit(main())
