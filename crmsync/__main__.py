"""python -m crmsync: the same as the crmsync command."""

from .cli import main

main()
