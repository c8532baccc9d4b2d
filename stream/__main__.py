"""`python -m stream [options]` = `audioclf listen [options]`."""
import sys

from audioclf.cli import main

raise SystemExit(main(["listen", *sys.argv[1:]]))
