"""Settings: one table, four layers, errors that name the setting."""
from __future__ import annotations

import re

import pytest

from feedsvc.config import SETTINGS, ConfigError, load_settings, replaced
from tests.conftest import ROOT


def test_defaults_need_no_config_file(tmp_path):
    settings = load_settings(toml_path=tmp_path / "none.toml", environ={})
    assert settings["SITE_URL"] == "http://127.0.0.1:8000"
    assert settings["FEED_MAX_ITEMS"] == 50
    assert settings["ARTICLES_DIR"] == "articles"


def test_a_category_slug_named_as_macos_types_it_names_the_category_as_read(tmp_path):
    """Category names are read as NFC: a decomposed key (Cafe + U+0301) never matched, and its warning said no article
    had the category 'Café' while one did."""
    settings = load_settings(environ={"FEEDSVC_CATEGORY_SLUGS": '{"Cafe\\u0301": "cafe"}'}, toml_path=tmp_path / "none.toml")
    assert settings["CATEGORY_SLUGS"] == {"Caf\u00e9": "cafe"}
    # The slug is the operator's as written: one published decomposed keeps its URL (an upgrade moved it).
    settings = load_settings(environ={"FEEDSVC_CATEGORY_SLUGS": '{"Caf\\u00e9s": "cafe\\u0301s"}'}, toml_path=tmp_path / "none.toml")
    assert settings["CATEGORY_SLUGS"] == {"Caf\u00e9s": "cafe\u0301s"}


def test_a_toml_file_saved_with_a_byte_order_mark_is_read(tmp_path):
    toml = tmp_path / "feedsvc.toml"
    toml.write_bytes(b'\xef\xbb\xbfsite_title = "Notepad"\n')
    assert load_settings(toml_path=toml, environ={})["SITE_TITLE"] == "Notepad"


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
    assert settings["CHROME_MARKERS"] == ("Share this", "Subscribe")


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
        ({"FEEDSVC_CATEGORY_SLUGS": '{"a": "."}'}, "CATEGORY_SLUGS"),  # /category/./feed.rss is /category/feed.rss
        ({"FEEDSVC_CATEGORY_SLUGS": '{"a": "' + "𠀀" * 61 + '"}'}, "CATEGORY_SLUGS"),  # 244 bytes: no folder
        ({"FEEDSVC_CATEGORY_SLUGS": '{"Cafe\u0301": "a", "Caf\u00e9": "b"}'}, "CATEGORY_SLUGS"),  # one name twice
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


@pytest.mark.parametrize("line, named, nearest", [
    ('site_tittle = "typo"', "'site_tittle'", "'site_title'"),
    ("REFRESH_SECOND = 30", "'REFRESH_SECOND'", "'REFRESH_SECONDS'"),
])
def test_an_unknown_key_in_the_config_file_is_one_line_naming_the_nearest_setting(tmp_path, line, named, nearest):
    toml = tmp_path / "feedsvc.toml"
    toml.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(toml_path=toml, environ={})
    message = str(caught.value)
    assert "\n" not in message and str(toml) in message and named in message and f"did you mean {nearest}" in message


def test_a_misspelt_feedsvc_variable_is_an_error_naming_the_setting_it_looks_like(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(toml_path=tmp_path / "none.toml", environ={"FEEDSVC_REFRESH_SECOND": "30"})
    assert str(caught.value) == ("environment variable FEEDSVC_REFRESH_SECOND is not a setting: did you mean "
                                 "FEEDSVC_REFRESH_SECONDS? Rename or unset it")
    with pytest.raises(ConfigError, match="FEEDSVC_CONFIG"):
        load_settings(toml_path=tmp_path / "none.toml", environ={"FEEDSVC_CONFG": "x.toml"})


def test_feedsvc_variables_that_are_no_misspelt_setting_are_let_be(tmp_path):
    environ = {"FEEDSVC_CONFIG": "", "FEEDSVC_HOME": "/srv",
               "FEEDSVC_REFRESH_SECONDS": "30"}
    assert load_settings(environ=environ).refresh_seconds == 30


def test_the_settings_are_one_frozen_typed_object_nothing_can_change(tmp_path):
    import dataclasses
    from collections.abc import Mapping

    from feedsvc.config import Settings

    settings = load_settings({"CATEGORY_SLUGS": {"سياسة": "politics"}, "CHROME_MARKERS": ["Share this"],
                              "PARTNERS": [{"name": "A", "key_env": "A_KEY", "categories": ["سياسة"]}]},
                             toml_path=tmp_path / "none.toml", environ={})
    assert isinstance(settings, Settings)
    types = {f.name: f.type for f in dataclasses.fields(Settings)}
    assert [f.upper() for f in types] == [s.name for s in SETTINGS]  # one field per row of the table, in order
    assert types["refresh_seconds"] is int and types["chrome_markers"] is tuple and types["category_slugs"] is Mapping
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.refresh_seconds = 1
    with pytest.raises(TypeError):
        settings["REFRESH_SECONDS"] = 1
    with pytest.raises(TypeError):
        settings.category_slugs["x"] = "y"
    with pytest.raises(TypeError):
        settings.partners[0]["categories"] = "all"
    assert settings.chrome_markers == ("Share this",) and settings.partners[0]["categories"] == ("سياسة",)
    assert settings["SITE_URL"] == settings.site_url and dict(settings).keys() == {s.name for s in SETTINGS}
    again = load_settings(settings, toml_path=tmp_path / "none.toml", environ={})  # passed on as overrides: the same
    assert again == settings


def test_no_stage_reads_a_setting_by_its_name():
    """Stages get narrow option objects (articles.Options, site.FeedOptions, web.ServingOptions), not settings["X"].

    Only config.py (the table and its checks) and cli.py (which turns command options into overrides) use the names.
    """
    import ast

    names = {s.name for s in SETTINGS}
    found = []
    for path in sorted((ROOT / "feedsvc").rglob("*.py")):
        if path.relative_to(ROOT).as_posix() in ("feedsvc/config.py", "feedsvc/cli.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and node.slice.value in names:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: [{node.slice.value!r}]")
    assert not found


def test_an_unknown_override_is_an_error_naming_the_nearest_setting(tmp_path):
    # create_app({...}) and the CLI pass overrides: a misspelt one silently kept its default (SITE_URL unset: 127.0.0.1).
    with pytest.raises(ConfigError, match=r"^unknown setting 'SITE_ULR'; did you mean 'SITE_URL'\?$"):
        load_settings({"SITE_ULR": "https://news.example"}, toml_path=tmp_path / "none.toml", environ={})
    with pytest.raises(ConfigError, match="unknown setting 'DEBUG'; the settings are listed in the README"):
        load_settings({"DEBUG": True}, toml_path=tmp_path / "none.toml", environ={})


def test_replaced_settings_are_checked_again_and_stay_frozen(tmp_path):
    settings = load_settings({}, toml_path=tmp_path / "none.toml", environ={})
    changed = replaced(settings, site_url="https://news.example", chrome_markers=["Follow us"])
    assert (changed.site_url, changed.chrome_markers) == ("https://news.example", ("Follow us",))
    assert replaced(settings) == settings and settings.site_url == "http://127.0.0.1:8000"
    for bad, message in (({"feed_max_items": -5}, "FEED_MAX_ITEMS=-5 must be at least 1"),
                         ({"site_url": "news.example"}, "SITE_URL='news.example' must be an absolute"),
                         ({"site_ulr": "https://news.example"}, "unknown setting 'site_ulr'; did you mean 'site_url'?"),
                         ({"verbose": True}, "unknown setting 'verbose'; the settings are listed in the README")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            replaced(settings, **bad)


@pytest.mark.parametrize("name, value, said", [
    ("TIME_ZONE", "America", "not an IANA time zone"),  # a folder of the zone database: IsADirectoryError
    ("SITE_URL", "https://[::1", "absolute http(s) URL"),
    ("SITE_URL", "https://news.example:99999", "absolute http(s) URL"),
    ("SITE_URL", "https://news.example:abc", "absolute http(s) URL"),
    ("SITE_URL", "https://news example", "absolute http(s) URL"),
    ("WEBSUB_HUB", "http://[::1", "absolute http(s) URL or empty"),
    ("ARTICLES_DIR", "", "must not be empty"),
    ("STATE_PATH", " ", "must not be empty"),
    ("TOMBSTONE_DAYS", "740000", "at most 36,500"),
    ("REFRESH_SECONDS", "99999999999999999999", "at most 86,400"),
    ("FEED_MAX_ITEMS", "99999999999999999999", "at most 10,000"),
    ("ARCHIVE_MAX_AGE", "99999999999", "at most 31,536,000"),
    ("CATEGORY_SLUGS", '{"سياسة": "news", "رياضة": "News"}', "one slug 'News'"),
    ("SITE_TITLE", "News\x0bSite", "control character"),
    ("SITE_DESCRIPTION", "News\x1b[31m", "control character"),
])
def test_a_setting_no_feed_can_be_made_with_is_one_line_naming_it_never_a_traceback_later(name, value, said):
    """Each was let through and failed later: a traceback at start, every build failing, a category with no feed."""
    with pytest.raises(ConfigError, match=f"{name}.*{re.escape(said)}" if name not in said else re.escape(said)):
        load_settings(environ={"FEEDSVC_CONFIG": "", f"FEEDSVC_{name}": value})


@pytest.mark.parametrize("field", ["key_env", "key_file"])
def test_a_partner_key_field_that_is_not_text_is_refused_naming_it(tmp_path, field):
    toml = tmp_path / "feedsvc.toml"
    toml.write_text(f'partners = [{{ name = "a", {field} = 5 }}]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=f"PARTNERS\\[0\\] \\(a\\): {field} must be a name in quotes"):
        load_settings(toml_path=toml, environ={})


def test_a_config_file_named_that_is_not_there_is_an_error_and_an_empty_name_means_none(tmp_path):
    with pytest.raises(ConfigError, match="FEEDSVC_CONFIG names .*real.tom, which is not a file"):
        load_settings(environ={"FEEDSVC_CONFIG": str(tmp_path / "real.tom")})
    assert load_settings(environ={"FEEDSVC_CONFIG": ""}).site_url == "http://127.0.0.1:8000"


def test_the_site_language_in_another_form_is_its_canonical_tag():
    """An ISO 639-2 or 639-3 code, as a CMS's export writes it, is the tag readers and browsers know (RFC 5646 §4.5)."""
    for written, tag in (("ara", "ar"), ("arb", "arb"), ("heb", "he"), ("per", "fa"), ("urd", "ur"), ("iw", "he"), ("AR-eg", "ar-EG")):
        assert load_settings(environ={"FEEDSVC_CONFIG": "", "FEEDSVC_SITE_LANGUAGE": written}).site_language == tag, written


@pytest.mark.parametrize("tag, good", [("ar", True), ("en-GB", True), ("zh-Hant-TW", True), ("es-419", True),
                                       ("english", False), ("e", False), ("ar-", False), ("ar_SA", False)])
def test_the_site_language_is_a_language_tag(tag, good):
    if good:
        assert load_settings(environ={"FEEDSVC_CONFIG": "", "FEEDSVC_SITE_LANGUAGE": tag}).site_language == tag
    else:
        with pytest.raises(ConfigError, match="SITE_LANGUAGE"):
            load_settings(environ={"FEEDSVC_CONFIG": "", "FEEDSVC_SITE_LANGUAGE": tag})


def test_a_setting_written_twice_in_two_cases_in_feedsvc_toml_is_an_error(tmp_path):
    toml = tmp_path / "feedsvc.toml"
    toml.write_text('site_url = "https://a.example"\nSITE_URL = "https://b.example"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="site_url and SITE_URL are one setting"):
        load_settings(toml_path=toml, environ={})


@pytest.mark.parametrize("overrides, said", [
    ({"SITE_URL": "http://example.com:0"}, "SITE_URL"), ({"WEBSUB_HUB": "http://hub.example:0/"}, "WEBSUB_HUB"),
    ({"RATE_LIMIT_EXEMPT": [5]}, "RATE_LIMIT_EXEMPT: 5 is not an address"),
])
def test_a_port_0_or_an_exempt_address_that_is_a_number_stops_start_up(overrides, said):
    """Port 0 is no port a reader can reach, and ip_network(5) read a number as 0.0.0.5/32: both were taken (found in review)."""
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_settings(overrides)


@pytest.mark.parametrize("raw", ["2024", "true", "Follow us"])
def test_a_list_setting_of_one_item_in_the_environment_is_that_item(raw):
    """FEEDSVC_CHROME_MARKERS=2024 was refused as "must be a JSON list": it reads as JSON (a number), never as the
    comma-separated list of one the README offers (found in review)."""
    assert load_settings(environ={"FEEDSVC_CHROME_MARKERS": raw}).chrome_markers == (raw,)


def test_a_list_setting_written_as_one_json_string_is_that_string():
    # FEEDSVC_CHROME_MARKERS='"Share this"' was the marker '"Share this"', quotes and all: it never matched a line.
    assert load_settings(environ={"FEEDSVC_CHROME_MARKERS": '"Share this"'}).chrome_markers == ("Share this",)


def test_a_true_or_false_setting_left_blank_is_refused_not_read_as_false(tmp_path):
    # FEEDSVC_WATCH= meant false, silently, where every other setting left blank is refused.
    with pytest.raises(ConfigError, match=re.escape("setting FEEDSVC_WATCH='' must be true or false")):
        load_settings(toml_path=tmp_path / "none.toml", environ={"FEEDSVC_WATCH": ""})
    assert load_settings(toml_path=tmp_path / "none.toml", environ={"FEEDSVC_WATCH": "off"})["WATCH"] is False


def test_category_slugs_naming_one_category_twice_say_which_two_keys():
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"FEEDSVC_CONFIG": "", "FEEDSVC_CATEGORY_SLUGS": '{"الرياضة": "sport", "الريـاضة": "sports"}'})
    assert "'الرياضة' and 'الريـاضة' are both 'الرياضة'" in str(caught.value) and "keep one" in str(caught.value)


def test_a_section_name_with_an_isolated_haraka_is_the_name_without_it():
    """NFKC makes ﹰ a space and the mark: ' الرياضة', a section apart (found in review)."""
    from feedsvc.config import section_name

    for written in ("ﹰالرياضة", "الرياضةﹰ", "الرياضة ﹰ"):
        assert section_name(written) == "الرياضة", written
    assert section_name("ﱞاقتصاد") == "اقتصاد"
