"""`python3 -m smaug_network`: the same as the smaug-plugin-network launcher."""

import sys

from .main import main

sys.exit(main())
