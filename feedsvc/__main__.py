"""`python -m feedsvc` is the `feedsvc` command."""
from .cli import main

main()
