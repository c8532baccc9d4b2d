"""`python -m train DATA --out MODEL` = `audioclf train ...`."""
import sys

from audioclf.cli import main

raise SystemExit(main(["train", *sys.argv[1:]]))
