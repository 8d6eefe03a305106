"""Codings made beside a build (resource.code_beside): `feedsvc build` has the feeds a render makes anew coded on other
threads while the render goes on, and whoever asks for a coding first waits for it, never makes it twice."""
from __future__ import annotations

import gzip
import threading
from datetime import datetime, timezone

import brotli
from click.testing import CliRunner

import feedsvc.resource as resource
from feedsvc import cli
from feedsvc.building import render
from feedsvc.resource import Rendered, code_beside

WHEN = datetime(2026, 11, 30, tzinfo=timezone.utc)


def test_codings_made_beside_are_those_asked_for_and_each_is_made_once(monkeypatch):
    made, gate = [], threading.Event()
    real = dict(resource.CODINGS)

    def slow(coding):
        def make(body):
            gate.wait(5)  # held until the asker is waiting on the resource
            made.append((coding, body))
            return real[coding](body)
        return make

    monkeypatch.setattr(resource, "CODINGS", {name: slow(name) for name in real})
    small, large = (Rendered(b"<rss>%d</rss>" % n * n, "application/rss+xml", WHEN, precompress=False) for n in (10, 5000))
    code_beside([small, large])
    asked = []
    asker = threading.Thread(target=lambda: asked.append(large.coded("br")))
    asker.start()
    gate.set()
    asker.join(5)
    for res in (small, large):
        assert gzip.decompress(res.coded("gzip")) == res.body and brotli.decompress(res.coded("br")) == res.body
    assert asked == [large.coded("br")]
    assert sorted(made, key=lambda m: (m[0], len(m[1]))) == sorted(
        [(coding, res.body) for coding in real for res in (small, large)], key=lambda m: (m[0], len(m[1])))  # once each
    largest_first = [len(body) for coding, body in made if coding == "gzip"]
    assert largest_first == sorted(largest_first, reverse=True)


def test_feedsvc_build_codes_the_fresh_feeds_before_its_sitemaps_are_made(sample_dir, tmp_path, monkeypatch):
    order = []
    put_sitemaps = render.Renderer._put_sitemaps

    def beside(resources):
        order.append(("coded", sorted(res.media_type for res in resources)))
        code_beside(resources)

    def sitemaps(self, *args):
        order.append(("sitemaps", self.code_fresh is beside))
        return put_sitemaps(self, *args)

    monkeypatch.setattr(resource, "code_beside", beside)
    monkeypatch.setattr(render.Renderer, "_put_sitemaps", sitemaps)
    env = {"FEEDSVC_STATE_PATH": str(tmp_path / "state.db"), "FEEDSVC_CONFIG": ""}
    result = CliRunner().invoke(cli.main, ["build", "--out", str(tmp_path / "out"), "--articles", str(sample_dir)], env=env)
    assert result.exit_code == 0, result.output
    (what, media), (then, wired) = order[:2]
    assert what == "coded" and then == "sitemaps" and wired
    assert {"application/rss+xml", "application/atom+xml", "application/feed+json"} <= set(media)
    body = (tmp_path / "out" / "feed.rss").read_bytes()
    assert gzip.decompress((tmp_path / "out" / "feed.rss.gz").read_bytes()) == body


def test_a_server_builder_leaves_its_feeds_to_be_coded_after_its_first_commit(make_publisher, sample_dir):
    assert make_publisher(sample_dir).renderer.code_fresh is None
