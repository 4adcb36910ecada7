"""`python -m emu.cli ...` runs the gomemu command (as the installed `gomemu` script does)."""

import sys

from emu.cli import main

sys.exit(main())
