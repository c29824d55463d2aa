"""``python -m longlens``: the same as the ``longlens`` command."""

import sys

from longlens.cli.main import main

sys.exit(main())
