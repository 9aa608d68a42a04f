"""`python -m callproof` runs the command line."""

from callproof._cli import main

main()
