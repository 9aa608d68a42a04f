"""`python -m callproof` runs the command line."""

from ._cli import main

main()
