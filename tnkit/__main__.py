"""``python -m tnkit``: the ``tnkit`` command (``tnkit.cli``).

Nothing but the call: the commands live in ``tnkit.cli``.
"""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
