"""WSGI entry point: `gunicorn wsgi:app` (each worker builds the feeds and keeps them fresh).

Do not use gunicorn's --preload with it: the scheduler's threads would start in the master and not
survive the fork. For Flask's development server use `flask --app feedsvc run`, which never starts one.
"""
from feedsvc.cli import serving_app

app = serving_app({})
