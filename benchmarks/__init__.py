"""Benchmarks: issue 10's target table — feedsvc's start-up, memory, publish-on-save, build and serving figures
next to Hugo (and a bare Flask app and nginx under wrk), measured in the same run.

Run `python -m benchmarks` (see __main__.py); results go to benchmarks/out/, which git ignores.
"""
