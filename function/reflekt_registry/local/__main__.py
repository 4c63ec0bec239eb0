"""`python -m reflekt_registry.local`: start the local server."""

import sys

from .server import main

sys.exit(main())
