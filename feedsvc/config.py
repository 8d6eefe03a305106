"""Settings: one table of (name, default, help), read in one place into one frozen, typed Settings object.

Layers, later wins: defaults → feedsvc.toml → FEEDSVC_* environment → explicit overrides. An unknown key in
feedsvc.toml or in the overrides, or a FEEDSVC_* variable that looks like a misspelt setting, is an error naming the
nearest one.
Stages take narrow option objects made from Settings (reading/articles.Options, building/site.FeedOptions,
serving/web.ServingOptions), never the settings by name.
"""
from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import os
import re
import tomllib
import unicodedata
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, make_dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .urls import SLUG_BYTES

ENV_PREFIX = "FEEDSVC_"
# FEEDSVC_* variables that are not settings: the settings file.
OTHER_VARIABLES = frozenset({ENV_PREFIX + "CONFIG"})

# The site chrome the seed's scraper left at the end of articles, Arabic and English.
DEFAULT_CHROME_MARKERS = (
    "تابعونا على",
    "اظهر المزيد",
    "أظهر المزيد",
    "مقالات ذات صلة",
    "اترك تعليقاً",
    "اترك تعليقا",
    "لن يتم نشر عنوان بريدك الإلكتروني",
    "زر الذهاب إلى الأعلى",
    "Follow us on",
    "Show More",
    "Related Articles",
    "Leave a Reply",
    "Your email address will not be published",
    "Back to top button",
)


@dataclass(frozen=True)
class Setting:
    """One setting: its name, default, type and a line of help."""

    name: str
    default: Any
    kind: type
    help: str
    minimum: int = 1  # for whole numbers
    maximum: int = 10**9  # for whole numbers: past any use, and what a date, SQLite and HTTP's max-age hold


SETTINGS = (
    Setting("ARTICLES_DIR", "articles", str, "Folder of article files, read recursively."),
    Setting("SITE_TITLE", "feedsvc", str, "Site title; feed titles are built from it."),
    Setting("SITE_URL", "http://127.0.0.1:8000", str, "Absolute base URL of every link in feeds and pages."),
    Setting("SITE_DESCRIPTION", "News feeds", str, "One line describing the site (RSS channel description)."),
    Setting("SITE_AUTHOR", "feedsvc", str, "Feed-level author name (Atom requires one)."),
    Setting("SITE_LANGUAGE", "en", str, "Language used when an article's language cannot be told (BCP 47)."),
    Setting("TIME_ZONE", "UTC", str, "IANA zone for article dates written without one."),
    Setting("FEED_MAX_ITEMS", 50, int, "Most items in one feed (page).", maximum=10_000),
    Setting("SUMMARY_LENGTH", 280, int, "Longest generated summary, in characters, cut at a word."),
    Setting("CHROME_MARKERS", [], list, "Extra lines that start site chrome, added to the built-in Arabic and English ones."),
    Setting("CATEGORY_SLUGS", {}, dict, 'Category name → URL slug, e.g. {"سياسة": "politics"}: at most 80 characters and '
            '240 bytes, not `.`; a name is read as category names are (NFC, no harakat or tatweel). A name no published article has is logged once (as is a partner\'s licensed one): a misspelling maps (or licenses) nothing.'),
    Setting("STATE_PATH", "feedsvc-state.sqlite3", str, "SQLite state file (its -wal and -shm files sit beside it), relative to the working folder."),
    Setting("REFRESH_SECONDS", 60, int, "Seconds between scheduled refreshes; also the feeds' cache lifetime.", maximum=86_400),
    Setting("WATCH", True, bool, "Watch the articles folder and publish a saved file within a second (feedsvc serve)."),
    Setting("SETTLE_MS", 300, int, "Where the kernel cannot tell whether a file is still open for writing, one changed less than this many milliseconds ago may still be being written: wait.", 0, 3_600_000),
    Setting("PUBLIC_CONTENT", "full", str, 'What public feeds carry: "full" (the whole body) or "summary".'),
    Setting("ARCHIVE_MAX_AGE", 86400, int, "Cache lifetime in seconds of complete archive pages (?page=N), which rarely change.", maximum=31_536_000),
    Setting("PARTNERS", [], list, "Syndication partners: name, key_env or key_file, categories (a list or \"all\"), full_text."),
    Setting("RATE_LIMIT", 600, int, "Requests a minute one client address may make for public feeds; 0 = no limit.", 0),
    Setting("RATE_LIMIT_EXEMPT", ["127.0.0.0/8", "::1"], list, "Client addresses or networks RATE_LIMIT never applies to: this machine's own (a local proxy without PROXY_HOPS, health checks); [] = none."),
    Setting("PARTNER_RATE_LIMIT", 1200, int, "Requests a minute one partner key may make; 0 = no limit.", 0),
    Setting("PROXY_HOPS", 0, int, "Proxies in front of feedsvc whose X-Forwarded-For (client address) and X-Forwarded-Proto (http or https) to trust.", 0, 64),
    Setting("TOMBSTONE_DAYS", 30, int, "Days the Atom and JSON feeds that carried an article announce that it went (RFC 6721 tombstones); 0 = never.", 0, 36_500),
    Setting("WEBSUB_HUB", "", str, "WebSub hub URL; when set, feeds advertise it and each change is published to it."),
    Setting("LOG_LEVEL", "INFO", str, "Logging level: DEBUG, INFO, WARNING or ERROR."),
)
SETTING_NAMES = tuple(s.name for s in SETTINGS)
_ATTRIBUTES = {s.name: s.name.lower() for s in SETTINGS}


class _ByName(MappingABC):
    """Settings read by their table name too (settings["SITE_URL"]): Flask's config and the tools take a mapping."""

    __slots__ = ()

    def __getitem__(self, name: str) -> Any:
        if name not in _ATTRIBUTES:
            raise KeyError(name)
        return getattr(self, _ATTRIBUTES[name])

    def __iter__(self):
        return iter(SETTING_NAMES)

    def __len__(self) -> int:
        return len(SETTING_NAMES)


# One attribute per row of SETTINGS (settings.site_url), typed by its kind: lists are tuples, tables read-only mappings.
Settings = make_dataclass(
    "Settings", [(s.name.lower(), {list: tuple, dict: MappingABC}.get(s.kind, s.kind)) for s in SETTINGS],
    bases=(_ByName,), frozen=True, namespace={"__module__": __name__, "__doc__": "The validated settings, frozen; load_settings() makes them."},
)


class ConfigError(ValueError):
    """A setting has a value feedsvc cannot use; the message names it and the fix."""


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    toml_path: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the four layers and return the validated settings, frozen."""
    values: dict[str, Any] = {s.name: _copy(s.default) for s in SETTINGS}
    values.update(_set_values(toml_path, environ))
    overrides = overrides or {}
    unknown = sorted(name for name in overrides if name not in SETTING_NAMES)
    if unknown:  # a misspelt override would silently keep the default
        raise ConfigError(_unknown(unknown[0], lower=False))
    for name, value in overrides.items():
        values[name] = _thawed(value)  # settings passed on as overrides: checked again like any value
    return _settled(values)


def replaced(settings: Settings, **changes: Any) -> Settings:
    """The settings with some values changed (by attribute: site_url=…), checked again as load_settings checks any."""
    values = {name: _thawed(settings[name]) for name in SETTING_NAMES}
    for attribute, value in changes.items():
        if attribute.upper() not in SETTING_NAMES:
            raise ConfigError(_unknown(attribute, lower=True))
        values[attribute.upper()] = _thawed(value)
    return _settled(values)


def _settled(values: dict[str, Any]) -> Settings:
    """Every setting's value by name, validated, as the frozen Settings."""
    values = validate(values)
    return Settings(**{_ATTRIBUTES[name]: _frozen(value) for name, value in values.items() if name in _ATTRIBUTES})


def explicit_settings(toml_path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Names of the settings that feedsvc.toml or a FEEDSVC_* variable sets (the rest are defaults)."""
    return frozenset(_set_values(toml_path, environ))


def _set_values(toml_path: str | os.PathLike | None, environ: Mapping[str, str] | None) -> dict[str, Any]:
    """The settings feedsvc.toml and then the environment set, by name."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if toml_path is None:
        toml_path = environ.get(ENV_PREFIX + "CONFIG", "feedsvc.toml")
    path = Path(toml_path)
    if path.is_file():  # "" is Path("."), a folder
        values.update(_read_toml(path))
    elif toml_path and toml_path == environ.get(ENV_PREFIX + "CONFIG"):  # named on purpose: left out, silently, a typo
        # would have published with every default (the site's URL among them). Empty: no file at all, on purpose.
        raise ConfigError(f"{ENV_PREFIX}CONFIG names {path}, which is not a file; point it at your feedsvc.toml, or set it "
                          "empty for none")
    elif toml_path and os.path.lexists(path):  # there but no file (a folder, a broken link): meant as one, not absent
        raise ConfigError(f"{path} {_not_a_file(path)}; make it your settings file, or remove it to use no file")
    for variable in environ:
        if variable.startswith(ENV_PREFIX) and variable[len(ENV_PREFIX):] not in _ATTRIBUTES and variable not in OTHER_VARIABLES:
            near = _nearest(variable[len(ENV_PREFIX):], SETTING_NAMES + ("CONFIG",))
            if near:  # a misspelt setting would silently keep its default
                raise ConfigError(f"environment variable {variable} is not a setting: did you mean {ENV_PREFIX}{near}? "
                                  "Rename or unset it")
    for setting in SETTINGS:
        raw = environ.get(ENV_PREFIX + setting.name)
        if raw is not None:
            values[setting.name] = _parse_env(setting, raw)
    return values


def validate(values: dict[str, Any]) -> dict[str, Any]:
    """Check every setting's type and range; raise ConfigError naming the first bad one."""
    out = dict(values)
    for s in SETTINGS:
        value = out[s.name]
        if s.kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"setting {s.name}={value!r} must be true or false")
        elif s.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"setting {s.name}={value!r} must be a whole number")
            if value < s.minimum:
                raise ConfigError(f"setting {s.name}={value!r} must be at least {s.minimum}")
            if value > s.maximum:
                raise ConfigError(f"setting {s.name}={value!r} must be at most {s.maximum:,}")
        elif not isinstance(value, s.kind):
            raise ConfigError(f"setting {s.name}={value!r} must be a {s.kind.__name__}")
    for name in ("ARTICLES_DIR", "STATE_PATH"):
        if not out[name].strip():  # "" is the working folder: an export's own files were published from it
            raise ConfigError(f"setting {name} must not be empty")
    if not _web_url(out["SITE_URL"]) or (url := urlsplit(out["SITE_URL"])).query or url.fragment:
        raise ConfigError(f"setting SITE_URL={out['SITE_URL']!r} must be an absolute http(s) URL such as https://news.example")
    out["SITE_URL"] = out["SITE_URL"].rstrip("/")
    try:
        ZoneInfo(out["TIME_ZONE"])
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):  # "America" names a folder of the zone database
        raise ConfigError(f"setting TIME_ZONE={out['TIME_ZONE']!r} is not an IANA time zone such as Asia/Riyadh") from None
    if out["LOG_LEVEL"].upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"setting LOG_LEVEL={out['LOG_LEVEL']!r} must be DEBUG, INFO, WARNING or ERROR")
    out["LOG_LEVEL"] = out["LOG_LEVEL"].upper()
    for network in out["RATE_LIMIT_EXEMPT"]:
        try:
            if not isinstance(network, str):  # ip_network(5) is 0.0.0.5/32: a number is no address written
                raise TypeError(network)
            ipaddress.ip_network(network, strict=False)
        except (TypeError, ValueError):
            raise ConfigError(f"setting RATE_LIMIT_EXEMPT: {network!r} is not an address or network such as 10.0.0.0/8") from None
    if not all(isinstance(m, str) and m.strip() for m in out["CHROME_MARKERS"]):
        raise ConfigError("setting CHROME_MARKERS must be a list of non-empty strings")
    taken: dict[str, str] = {}
    # Keys are read as articles' category names are (section_name: NFC, as macOS stores a name decomposed; no harakat or
    # tatweel): a key as written would never match.
    slugs: dict[str, Any] = {}
    keys: dict[str, str] = {}  # each name as read → the key it was written as
    for name, slug in out["CATEGORY_SLUGS"].items():
        if (composed := section_name(name)) in slugs:
            raise ConfigError(f"setting CATEGORY_SLUGS names one category twice: {keys[composed]!r} and {name!r} are both "
                              f"{composed!r} as category names are read (NFC, NFKC, no harakat or tatweel); keep one")
        slugs[composed], keys[composed] = slug, name  # the slug as written: a URL published under it stays
    out["CATEGORY_SLUGS"] = slugs
    for name, slug in out["CATEGORY_SLUGS"].items():
        if isinstance(slug, str) and (other := taken.setdefault(slug.casefold(), name)) != name:
            raise ConfigError(f"setting CATEGORY_SLUGS gives {other!r} and {name!r} one slug {slug!r}: each category needs "
                              "a slug of its own (one of the two would have no feed or page)")
        # A slug is a folder of the static export: at most SLUG_BYTES bytes, and never "." (/category/./feed.rss is
        # /category/feed.rss to every client).
        if (not isinstance(slug, str) or not slug or len(slug) > 80 or len(slug.encode("utf-8", "surrogatepass")) > SLUG_BYTES
                or slug != slug.strip() or slug == "." or any(c in slug for c in "/\\?#%") or ".." in slug
                or any(ord(c) < 32 or ord(c) == 127 for c in slug)):
            raise ConfigError(f"setting CATEGORY_SLUGS[{name!r}]={slug!r} must be a slug of 1-80 characters ({SLUG_BYTES} bytes) "
                              "without '/', '\\', '?', '#', '%', '..', spaces at the ends or control characters, and not '.'")
    for name in ("SITE_TITLE", "SITE_AUTHOR"):
        if not out[name].strip():
            raise ConfigError(f"setting {name} must not be empty")
    for name in ("SITE_TITLE", "SITE_DESCRIPTION", "SITE_AUTHOR"):
        if any(unicodedata.category(c) in ("Cc", "Cs") or c in "\ufffe\uffff" for c in out[name]):
            raise ConfigError(f"setting {name} has a control character (a line break, an escape code): feeds cannot "
                              "carry it; write it on one line of text")
    if out["PUBLIC_CONTENT"] not in ("full", "summary"):
        raise ConfigError(f"setting PUBLIC_CONTENT={out['PUBLIC_CONTENT']!r} must be \"full\" or \"summary\"")
    if out["WEBSUB_HUB"] and not _web_url(out["WEBSUB_HUB"]):
        raise ConfigError(f"setting WEBSUB_HUB={out['WEBSUB_HUB']!r} must be an absolute http(s) URL or empty")
    for i, partner in enumerate(out["PARTNERS"]):
        _check_partner(i, partner)
    language = canonical_language(out["SITE_LANGUAGE"]) if "_" not in out["SITE_LANGUAGE"] else None  # ar_SA: a locale
    if language is None:
        raise ConfigError(f"setting SITE_LANGUAGE={out['SITE_LANGUAGE']!r} must be a language tag such as ar or en")
    out["SITE_LANGUAGE"] = language
    return out


# Arabic presentation forms and full-width Latin (NFKC makes them the letters they show), and tatweel, harakat and the
# superscript alef, which a section's name may be written with or without.
_SHOWN_OTHERWISE = re.compile("[\ufb50-\ufdff\ufe70-\ufeff\uff01-\uff5e]")
_ELONGATION_AND_MARKS = re.compile("[\u0640\u064b-\u065f\u0670]")


def section_name(name: str) -> str:
    """A category's or tag's name written one way, whether an article or a setting (CATEGORY_SLUGS, a partner's
    categories) names it: NFC, presentation forms and full-width letters as the letters they show, no harakat or
    tatweel (found in review: الرياضة, الرِّياضة and الريـاضة were three sections with three feeds; ﺍﻗﺘﺼﺎﺩ a fourth)."""
    if name.isascii():
        return name
    name = unicodedata.normalize("NFKC" if _SHOWN_OTHERWISE.search(name) else "NFC", name)
    # NFKC makes an isolated haraka (ﹰ) a space and the mark: one space between words, none at the ends.
    return " ".join(_ELONGATION_AND_MARKS.sub("", name).split()) or name


# A BCP 47 tag as sites write them: a language of 2-3 letters, then subtags of 1-8 letters or digits (ar, en-GB,
# zh-Hant-TW, es-419); "english" names no language. The one rule for SITE_LANGUAGE and an article's `lang:`
# (reading/frontmatter.py). https://www.rfc-editor.org/rfc/rfc5646#section-2.1
LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*", re.ASCII)
# Tags already in their canonical form, the usual ones (ar, en, fr-CA): no need to load langcodes' tables (65 ms).
_CANONICAL = re.compile(r"[a-z]{2}(?:-[A-Z]{2})?", re.ASCII)
_DEPRECATED = frozenset({"iw", "ji", "in", "jw", "mo", "sh"})  # two-letter codes IANA replaced (he, yi, id, …)
LANGUAGE_TAG_MAX = 64  # characters: RFC 5646 §4.4.1 asks for 35 at least; langcodes recurses once a subtag (1,000 fail)


@functools.lru_cache(maxsize=256)
def canonical_language(tag: str) -> str | None:
    """A language tag in its canonical BCP 47 form, or None when it is none (LANGUAGE_TAG). ISO 639-2 codes that have a
    two-letter one become it (ara → ar, heb → he, per and fas → fa, urd → ur): a CMS's export writes them, and a
    direction, a font or a reader's filter knows the short ones (an article in `lang: ara` was laid out left to right).
    Individual languages (arb, pes, pnb) stay themselves. Case: ar-EG, zh-Hant-TW. RFC 5646 §4.5."""
    tag = tag.strip().replace("_", "-")
    if not LANGUAGE_TAG.fullmatch(tag):
        return None
    if _CANONICAL.fullmatch(tag) and tag[:2] not in _DEPRECATED:
        return tag
    if len(tag) > LANGUAGE_TAG_MAX:
        return None
    import langcodes  # here: only a tag not already canonical needs its tables

    try:
        # Not macro=True: it makes pnb (Western Punjabi, right to left) lah, which no direction table knows.
        return langcodes.standardize_tag(tag)
    except (langcodes.LanguageTagError, ValueError):
        # A tag of the form langcodes refuses (zh-CN-Hans, ar-x, ar-SA-1): kept, in BCP 47's case, as it always was.
        first, *rest = tag.split("-")
        return "-".join([first.lower()] + [p.upper() if len(p) == 2 else p.title() if len(p) == 4 else p.lower() for p in rest])


def not_a_folder(path: str | os.PathLike) -> str:
    """Why a path given as the articles folder is none, as its error says it: it does not exist, or it is a file."""
    return "is a file, not a folder" if os.path.lexists(path) and not os.path.isdir(path) else "does not exist"


def folder_problem(path: str | os.PathLike, named_by: str = "pass --articles DIR") -> str | None:
    """The one-line error for an articles folder that cannot be read, with its fix: not there or a file (not_a_folder:
    named_by says how to name another), or a listing refused (the folder's permission); None when it can be read."""
    if not os.path.isdir(path):
        return f"articles folder {path} {not_a_folder(path)}; {named_by} or set ARTICLES_DIR"
    try:
        os.scandir(path).close()
    except OSError as exc:
        return (f"articles folder {path} cannot be read ({exc.strerror or exc}); give the user feedsvc runs as read and "
                "search (x) permission on it (chmod u+rx, or the group's)")
    return None


def _web_url(text: str) -> bool:
    """Whether text is an absolute http(s) URL with a host that can be one (no space or other character a host never
    has) and a port, if any, that is one."""
    try:
        url = urlsplit(text)
        port = url.port  # raises ValueError for :99999 or :abc
    except ValueError:  # "https://[::1" and the like
        return False
    host = url.hostname or ""
    return url.scheme in ("http", "https") and bool(host) and port != 0 and not any(
        c.isspace() or c in '<>"{}|\\^`' or unicodedata.category(c)[0] == "C" for c in host)


def _check_partner(index: int, partner: Any) -> None:
    """The shape of one PARTNERS entry; the key itself is read by partners.py, never from settings."""
    where = f"setting PARTNERS[{index}]"
    if not isinstance(partner, dict):
        raise ConfigError(f"{where} must be a table with name, key_env or key_file, categories and full_text")
    name = partner.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where} needs a name")
    where = f"setting PARTNERS[{index}] ({name})"
    if "key" in partner or ("key_env" in partner) == ("key_file" in partner):
        raise ConfigError(f"{where} needs exactly one of key_env (an environment variable's name) or key_file "
                          "(a file's path); keys never go in settings")
    for field in ("key_env", "key_file"):
        if field in partner and (not isinstance(partner[field], str) or not partner[field].strip()):
            raise ConfigError(f"{where}: {field} must be a name in quotes, such as \"PARTNER_KEY\"")
    unknown = sorted(set(partner) - {"name", "key_env", "key_file", "categories", "full_text"})
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}")
    categories = partner.get("categories", "all")
    if categories != "all" and not (isinstance(categories, list) and categories and all(isinstance(c, str) for c in categories)):
        raise ConfigError(f'{where}: categories must be "all" or a list of category names')
    if not isinstance(partner.get("full_text", True), bool):
        raise ConfigError(f"{where}: full_text must be true or false")


def _not_a_file(path: Path) -> str:
    """Why a settings path that is there is no file to read, as its error says it."""
    if path.is_symlink() and not path.exists():
        return f"is a link to {os.readlink(path)}, which is not there"
    return "is a folder, not a file" if path.is_dir() else "is not a regular file"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        # utf-8-sig: a byte order mark, as Windows Notepad saves one, is not part of the TOML (tomllib refuses it
        # with "Invalid statement (at line 1, column 1)", which names nothing the user can see).
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file or remove it") from None
    except OSError as exc:  # its permissions, an I/O error: a traceback would name neither the file nor the fix
        raise ConfigError(f"{path} cannot be read ({exc.strerror or exc}); make it readable by this user "
                          f"(uid {os.geteuid()}), or remove it") from None
    unknown = sorted(k for k in data if k.upper() not in SETTING_NAMES)
    if unknown:  # named in the file's own spelling: lower case (as the README's example) or as the table
        raise ConfigError(f"{path}: {_unknown(unknown[0], lower=unknown[0].islower())}")
    seen: dict[str, str] = {}
    for key in data:  # site_url and SITE_URL are one setting: which of the two to keep would be a guess
        if (other := seen.setdefault(key.upper(), key)) != key:
            raise ConfigError(f"{path}: {other} and {key} are one setting, {key.upper()}; keep one of them")
    return {k.upper(): v for k, v in data.items()}


def _parse_env(setting: Setting, raw: str) -> Any:
    name = ENV_PREFIX + setting.name
    if setting.kind is bool:
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off"):  # not "": left blank by mistake, as STATE_PATH's
            return False
        raise ConfigError(f"setting {name}={raw!r} must be true or false (1/0, yes/no, on/off)")
    if setting.kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"setting {name}={raw!r} must be a whole number") from None
    if setting.kind in (list, dict):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            if setting.kind is list:  # a plain comma-separated list is friendlier in a shell
                return [part.strip() for part in raw.split(",") if part.strip()]
            raise ConfigError(f'setting {name} must be a JSON object such as {{"سياسة": "politics"}}') from None
        if setting.kind is list and isinstance(value, str):  # '"Share this"': the one item JSON writes, without its quotes
            return [value]
        if setting.kind is list and not isinstance(value, (list, dict)):  # `2024`, `true`: one item, as comma-separated
            return [raw.strip()]
        if not isinstance(value, setting.kind):
            raise ConfigError(f"setting {name} must be a JSON {setting.kind.__name__}")
        return value
    return raw


def _unknown(name: str, lower: bool) -> str:
    """What to say of a name that is no setting: the setting it is closest to, in lower case (lower) or as the table
    names it, so that it reads as the caller would write it (an attribute, a TOML key, an override)."""
    near = _nearest(name, SETTING_NAMES)
    if near is None:
        return f"unknown setting {name!r}; the settings are listed in the README"
    return f"unknown setting {name!r}; did you mean {(near.lower() if lower else near)!r}?"


def _nearest(name: str, names) -> str | None:
    """The valid name closest to a misspelt one, if one is close."""
    found = difflib.get_close_matches(name.upper(), names, n=1, cutoff=0.8)
    return found[0] if found else None


def _frozen(value: Any) -> Any:
    """A value no one can change: lists as tuples, tables as read-only mappings, all the way down."""
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _thawed(value: Any) -> Any:
    """A frozen value as it was read: tuples as lists, read-only mappings as dicts."""
    if isinstance(value, MappingABC):
        return {k: _thawed(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thawed(v) for v in value]
    return value


def _copy(value: Any) -> Any:
    return type(value)(value) if isinstance(value, (list, dict)) else value
