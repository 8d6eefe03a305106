"""`python -m feedsvc` is the `feedsvc` command."""
from .cli import run

run()
