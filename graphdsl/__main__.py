"""`python -m graphdsl` is the `graphdsl` command (torchrun runs modules, not scripts)."""
import sys

from .cli import main

sys.exit(main())
