"""``python -m ocpp_sansio.cli``: the same as the ``ocpp-sansio`` command."""

import sys

from . import main

sys.exit(main())
