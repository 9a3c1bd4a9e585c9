"""`python -m conformance` runs the command line."""

from .cli import main

main()
