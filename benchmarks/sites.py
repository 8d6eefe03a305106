"""The three builds compared: feedsvc's cold start, Hugo and Pelican, each from the same generated articles.

Each build is a fresh child process timed from its fork to the end of its work, peak memory included.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from . import measure
from .setup import hugo_binary

PROJECT = Path(__file__).resolve().parent.parent
SITE_URL = "http://127.0.0.1:8000"
FEED_ITEMS = 50  # feedsvc's FEED_MAX_ITEMS default; Hugo and Pelican are given the same limit

HUGO_CONFIG = f"""\
baseURL = "{SITE_URL}/"
title = "feedsvc"
languageCode = "en"
disableKinds = ["sitemap", "robotsTXT", "404"]
[taxonomies]
  category = "categories"
[outputs]
  home = ["html", "rss"]
  section = ["html"]
  taxonomy = ["html"]
  term = ["html", "rss"]
  page = ["html"]
[services.rss]
  limit = {FEED_ITEMS}
"""
# Hugo's built-in RSS template is used for the feeds; these two pages are the least it needs.
HUGO_LAYOUTS = {
    "single.html": '<!doctype html><html><head><meta charset="utf-8"><title>{{ .Title }}</title></head><body>'
                   '<h1>{{ .Title }}</h1><time>{{ .Date.Format "2006-01-02 15:04" }}</time>{{ .Content }}</body></html>\n',
    "list.html": '<!doctype html><html><head><meta charset="utf-8"><title>{{ .Title }}</title></head><body><h1>{{ .Title }}</h1>'
                 '<ul>{{ range .Pages }}<li><a href="{{ .RelPermalink }}">{{ .Title }}</a></li>{{ end }}</ul></body></html>\n',
}

PELICAN_CONFIG = f"""\
AUTHOR = "feedsvc"
SITENAME = "feedsvc"
SITEURL = "{SITE_URL}"
PATH = "content"
TIMEZONE = "UTC"
DEFAULT_LANG = "en"
THEME = "theme"
FEED_DOMAIN = SITEURL
FEED_ALL_ATOM = "feeds/all.atom.xml"
CATEGORY_FEED_ATOM = "feeds/{{slug}}.atom.xml"
CATEGORY_FEED_RSS = "feeds/{{slug}}.rss.xml"
FEED_ALL_RSS = TRANSLATION_FEED_ATOM = AUTHOR_FEED_ATOM = AUTHOR_FEED_RSS = TAG_FEED_ATOM = None
FEED_MAX_ITEMS = {FEED_ITEMS}
DEFAULT_PAGINATION = False
DIRECT_TEMPLATES = ["index"]
TAG_SAVE_AS = AUTHOR_SAVE_AS = ""
ARTICLE_URL = "articles/{{slug}}/"
ARTICLE_SAVE_AS = "articles/{{slug}}/index.html"
CATEGORY_URL = "category/{{slug}}/"
CATEGORY_SAVE_AS = "category/{{slug}}/index.html"
LOAD_CONTENT_CACHE = CACHE_CONTENT = False
DELETE_OUTPUT_DIRECTORY = True
"""
_PELICAN_LIST = ('<!doctype html><html><head><meta charset="utf-8"><title>{{ SITENAME }}</title></head><body><ul>'
                 '{% for a in articles %}<li><a href="{{ SITEURL }}/{{ a.url }}">{{ a.title }}</a></li>{% endfor %}</ul></body></html>\n')
PELICAN_TEMPLATES = {
    "article.html": '<!doctype html><html lang="{{ article.lang }}"><head><meta charset="utf-8"><title>{{ article.title }}</title>'
                    '</head><body><h1>{{ article.title }}</h1><time>{{ article.locale_date }}</time>{{ article.content }}</body></html>\n',
    "index.html": _PELICAN_LIST,
    "category.html": _PELICAN_LIST,
}


def _write_all(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


def feedsvc_cold(corpus: Path, runs: int = 7, budget: float = 60.0, restart: bool = False, timeout: float = 3600) -> dict:
    """feedsvc in a fresh process with a fresh state file: start-up, imports, first refresh, then refreshes.

    restart: then start once more on the state file the first process left, as a restarted server does.
    """
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
        child = _feedsvc_child(corpus, Path(tmp) / "state.sqlite3", runs, budget, timeout)
        if restart:
            again = _feedsvc_child(corpus, Path(tmp) / "state.sqlite3", 0, budget, timeout)
            child.update(restart_s=again["seconds"], restart_peak_rss_mb=again["peak_rss_cold_mb"])
    return child


def _feedsvc_child(corpus: Path, state: Path, runs: int, budget: float, timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    cmd = [sys.executable, "-m", "benchmarks.coldstart", str(corpus / "articles"), str(state), "--runs", str(runs), "--budget", str(budget)]
    done = measure.run(cmd, cwd=str(PROJECT), env=env, timeout=timeout).check("feedsvc cold start")
    child = json.loads(done.stdout.strip().splitlines()[-1])
    child.update(
        seconds=child["built"] - done.started,  # fork → all feeds rendered
        startup_imports_s=child["imported"] - done.started,
        first_refresh_s=child["built"] - child["imported"],
        process_peak_rss_mb=done.peak_rss_mb,
    )
    return child


def hugo_build(corpus: Path, timeout: float = 1800) -> dict:
    """Hugo from scratch (no public/, no cache) over hugo/content: pages plus RSS for home and each category."""
    site = corpus / "hugo"
    (site / "hugo.toml").write_text(HUGO_CONFIG, encoding="utf-8")
    _write_all(site / "layouts", HUGO_LAYOUTS)
    shutil.rmtree(site / "public", ignore_errors=True)
    shutil.rmtree(site / "resources", ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="hugo-cache-") as cache:
        cmd = [hugo_binary() or "hugo", "--quiet", "--source", str(site), "--destination", str(site / "public"), "--cacheDir", cache]
        done = measure.run(cmd, timeout=timeout).check("hugo")
    feeds = sorted(p.relative_to(site / "public").as_posix() for p in (site / "public").rglob("index.xml"))
    return {"seconds": done.seconds, "peak_rss_mb": done.peak_rss_mb, "feeds": len(feeds),
            "files": sum(1 for p in (site / "public").rglob("*") if p.is_file())}


def pelican_build(corpus: Path, timeout: float = 1800) -> dict:
    """Pelican from scratch (no cache) over pelican/content: article and category pages, Atom and RSS per category."""
    site = corpus / "pelican"
    (site / "pelicanconf.py").write_text(PELICAN_CONFIG, encoding="utf-8")
    _write_all(site / "theme" / "templates", PELICAN_TEMPLATES)
    cmd = [sys.executable, "-m", "pelican", "content", "-s", "pelicanconf.py", "-o", "output", "-q"]
    done = measure.run(cmd, cwd=str(site), timeout=timeout)
    if done.timed_out:
        return {"seconds": None, "timed_out_after_s": timeout}
    done.check("pelican")
    feeds = sorted(p.name for p in (site / "output" / "feeds").glob("*.xml"))
    return {"seconds": done.seconds, "peak_rss_mb": done.peak_rss_mb, "feeds": len(feeds),
            "files": sum(1 for p in (site / "output").rglob("*") if p.is_file())}
