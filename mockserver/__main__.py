"""`python -m mockserver` runs the command line."""

from .cli import main

main()
