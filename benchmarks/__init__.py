"""Benchmarks: feedsvc's build, refresh, memory and serving figures next to Hugo, Pelican, Flask and nginx.

Run `python -m benchmarks` (see __main__.py); results go to benchmarks/out/, which git ignores.
"""
