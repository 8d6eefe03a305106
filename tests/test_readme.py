"""The README says what the code does: its two commands, the settings table, and the facts a newcomer meets first."""
from __future__ import annotations

import importlib.util
import re
import tomllib

import pytest

from feedsvc import create_app
from feedsvc.config import load_settings
from tests.conftest import ROOT, write

README = (ROOT / "README.md").read_text(encoding="utf-8")


def settings_table_tool():
    """tools/settings_table.py, loaded as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("settings_table", ROOT / "tools" / "settings_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def top_commands() -> list[str]:
    """The lines of the README's first code block."""
    block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert block and README.index(block.group(0)) < README.index("\n## "), "the commands come first"
    return block.group(1).splitlines()


def test_the_readme_starts_with_exactly_two_commands_the_first_making_a_venv():
    first, second = top_commands()
    assert first.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install . && feedsvc serve")
    assert second == ".ci/install-deps && pip install '.[test]' && python -m pytest"


def test_ci_runs_the_readmes_test_command_as_written():
    assert top_commands()[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_readme_names_the_python_version_pyproject_requires():
    required = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    assert required == ">=3.11" and "Python 3.11 or newer" in README


def test_the_readmes_settings_table_is_the_one_generated_from_the_code():
    tool = settings_table_tool()
    start, end = tool.readme_table(README)
    written = "\n".join(README.splitlines()[start:end])
    assert written == tool.settings_table(), "run: python tools/settings_table.py --write"


def test_the_generated_table_has_every_settings_name_default_and_help():
    from feedsvc.config import SETTINGS

    table = settings_table_tool().settings_table()
    for setting in SETTINGS:
        row = next(line for line in table.splitlines() if line.startswith(f"| `{setting.name}` |"))
        assert setting.help in row
    assert "| `STATE_PATH` | `feedsvc-state.sqlite3` |" in table and "| `WATCH` | `true` |" in table


def test_the_state_file_lands_in_the_folder_feedsvc_starts_from(tmp_path, monkeypatch, sample_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FEEDSVC_STATE_PATH", raising=False)
    monkeypatch.setenv("FEEDSVC_CONFIG", "")  # no feedsvc.toml
    create_app({"ARTICLES_DIR": str(sample_dir), "SETTLE_MS": 0})
    assert (tmp_path / "feedsvc-state.sqlite3").is_file()


def test_a_list_in_the_environment_may_be_comma_separated_or_json(tmp_path):
    for raw in ("Share this, Read more", '["Share this", "Read more"]'):
        settings = load_settings(toml_path=tmp_path / "absent.toml", environ={"FEEDSVC_CHROME_MARKERS": raw})
        assert settings["CHROME_MARKERS"] == ("Share this", "Read more")


@pytest.mark.parametrize("hops, scheme, client", [(0, "http", "127.0.0.1"), (1, "https", "203.0.113.7")])
def test_proxy_hops_trusts_x_forwarded_for_and_x_forwarded_proto(make_app, articles_dir, hops, scheme, client):
    from flask import request

    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    app = make_app(articles_dir, PROXY_HOPS=hops)
    app.add_url_rule("/_seen", "seen", lambda: f"{request.scheme} {request.remote_addr}")  # what the app was told
    res = app.test_client().get("/_seen", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"})
    assert res.get_data(as_text=True) == f"{scheme} {client}"


def test_the_readme_says_rss_items_carry_no_updated_date(make_app, articles_dir):
    write(articles_dir, "a.md", "---\ntitle: T\ncategory: News\ndate: 2026-01-01\nupdated: 2026-02-01\n---\nBody.\n")
    rss = make_app(articles_dir).test_client().get("/feed.rss").get_data(as_text=True)
    item = rss[rss.index("<item>"):]
    assert "<pubDate>" in item and "2026-02-01" not in item and "Feb 2026" not in item
    assert "RSS items carry only the published date" in " ".join(README.split())
