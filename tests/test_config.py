"""Settings: one table, four layers, errors that name the setting."""
from __future__ import annotations

import re

import pytest

from feedsvc.config import SETTINGS, ConfigError, load_settings
from tests.conftest import ROOT


def test_defaults_need_no_config_file(tmp_path):
    settings = load_settings(toml_path=tmp_path / "none.toml", environ={})
    assert settings["SITE_URL"] == "http://127.0.0.1:8000"
    assert settings["FEED_MAX_ITEMS"] == 50
    assert settings["ARTICLES_DIR"] == "articles"


def test_layers_apply_in_order_toml_then_environment_then_overrides(tmp_path):
    toml = tmp_path / "feedsvc.toml"
    toml.write_text('site_title = "from toml"\nfeed_max_items = 7\nsite_url = "https://toml.example/"\n', encoding="utf-8")
    env = {"FEEDSVC_FEED_MAX_ITEMS": "9", "FEEDSVC_SITE_URL": "https://env.example"}
    settings = load_settings({"SITE_URL": "https://arg.example"}, toml_path=toml, environ=env)
    assert settings["SITE_TITLE"] == "from toml"
    assert settings["FEED_MAX_ITEMS"] == 9
    assert settings["SITE_URL"] == "https://arg.example"


def test_environment_maps_and_lists_are_json_or_comma_separated(tmp_path):
    env = {"FEEDSVC_CATEGORY_SLUGS": '{"سياسة": "politics"}', "FEEDSVC_CHROME_MARKERS": "Share this, Subscribe"}
    settings = load_settings(toml_path=tmp_path / "none.toml", environ=env)
    assert settings["CATEGORY_SLUGS"] == {"سياسة": "politics"}
    assert settings["CHROME_MARKERS"] == ["Share this", "Subscribe"]


def test_config_file_named_by_environment_is_read(tmp_path):
    toml = tmp_path / "other.toml"
    toml.write_text('time_zone = "Asia/Riyadh"\n', encoding="utf-8")
    assert load_settings(environ={"FEEDSVC_CONFIG": str(toml)})["TIME_ZONE"] == "Asia/Riyadh"


@pytest.mark.parametrize(
    "env, name",
    [
        ({"FEEDSVC_FEED_MAX_ITEMS": "many"}, "FEEDSVC_FEED_MAX_ITEMS"),
        ({"FEEDSVC_FEED_MAX_ITEMS": "0"}, "FEED_MAX_ITEMS"),
        ({"FEEDSVC_SITE_URL": "news.example"}, "SITE_URL"),
        ({"FEEDSVC_TIME_ZONE": "Mars/Olympus"}, "TIME_ZONE"),
        ({"FEEDSVC_CATEGORY_SLUGS": '{"a": "x/y"}'}, "CATEGORY_SLUGS"),
        ({"FEEDSVC_CATEGORY_SLUGS": "not json"}, "FEEDSVC_CATEGORY_SLUGS"),
        ({"FEEDSVC_CATEGORY_SLUGS": '{"a": "x\\u0007y"}'}, "CATEGORY_SLUGS"),
        ({"FEEDSVC_CATEGORY_SLUGS": '{"a": "' + "x" * 81 + '"}'}, "CATEGORY_SLUGS"),
        ({"FEEDSVC_SITE_TITLE": "  "}, "SITE_TITLE"),
        ({"FEEDSVC_LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"FEEDSVC_REFRESH_SECONDS": "-5"}, "REFRESH_SECONDS"),
    ],
)
def test_an_invalid_setting_stops_start_up_naming_it(tmp_path, env, name):
    with pytest.raises(ConfigError, match=name):
        load_settings(toml_path=tmp_path / "none.toml", environ=env)


def test_an_unknown_key_in_the_config_file_is_named(tmp_path):
    toml = tmp_path / "feedsvc.toml"
    toml.write_text('site_tittle = "typo"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="site_tittle"):
        load_settings(toml_path=toml, environ={})


def test_a_broken_config_file_is_named(tmp_path):
    toml = tmp_path / "feedsvc.toml"
    toml.write_text("site_title = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="feedsvc.toml"):
        load_settings(toml_path=toml, environ={})


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", readme, flags=re.MULTILINE))
    missing = [s.name for s in SETTINGS if s.name not in documented]
    assert not missing, f"settings missing from the README's table: {missing}"


def test_settings_set_by_the_file_or_the_environment_are_told_from_defaults(tmp_path):
    from feedsvc.config import explicit_settings

    toml = tmp_path / "feedsvc.toml"
    toml.write_text('site_title = "x"\n', encoding="utf-8")
    assert explicit_settings(toml_path=toml, environ={"FEEDSVC_SITE_URL": "https://news.example"}) == {"SITE_TITLE", "SITE_URL"}
    assert explicit_settings(toml_path=tmp_path / "none.toml", environ={}) == frozenset()
