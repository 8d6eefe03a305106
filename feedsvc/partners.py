"""Syndication partners: who they are, their keys (from the environment or a file, never from the
repository), and which categories each has licensed. Keys are kept only as SHA-256 digests and are
compared in constant time; no message ever contains one.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from .config import ConfigError, section_name
from .urls import PARTNERS, is_category_key

MIN_KEY_LENGTH = 16


@dataclass(frozen=True)
class Partner:
    """A partner: its name, its key's digest, its licensed categories (None = all) and content mode."""

    name: str
    digest: bytes
    categories: frozenset[str] | None
    full_text: bool

    def licenses(self, category: str) -> bool:
        """True when the partner may read this category."""
        return self.categories is None or category in self.categories

    def leaves_out(self, key: str) -> bool:
        """Whether its view of the listing at key holds only some of the listing's items: the site-wide, a tag's or an
        author's listing, for a partner licensed for some categories (a category's is licensed whole or not at all)."""
        return self.categories is not None and not is_category_key(key)

    def feed_options(self) -> dict[str, Any]:
        """How its feeds differ from the public ones: its content mode, and its links under partners/."""
        return {"full_text": self.full_text, "prefix": PARTNERS, "viewer": self.name}


def load_partners(entries: Iterable[Mapping[str, Any]], environ: Mapping[str, str] | None = None) -> tuple[Partner, ...]:
    """Partners from the PARTNERS setting, reading each key from its environment variable or file."""
    environ = os.environ if environ is None else environ
    partners = []
    for entry in entries:
        name = entry["name"]
        if "key_env" in entry:
            if entry["key_env"] not in environ:
                raise ConfigError(f"partner {name!r}: environment variable {entry['key_env']} is not set; set it to a long "
                                  "random key (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
            key = environ[entry["key_env"]]
            where = f"environment variable {entry['key_env']}"
        else:
            try:
                key = Path(entry["key_file"]).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"partner {name!r}: key file {entry['key_file']} cannot be read ({exc.strerror}); "
                                  "create it with the partner's key on one line") from None
            where = f"key file {entry['key_file']}"
        key = key.strip()
        if len(key) < MIN_KEY_LENGTH:
            raise ConfigError(f"partner {name!r}: {where} is empty or shorter than {MIN_KEY_LENGTH} characters; "
                              "set it to a long random key (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
        categories = entry.get("categories", "all")
        partners.append(Partner(
            name=name,
            digest=_digest(key),
            categories=None if categories == "all" else frozenset(map(section_name, categories)),  # as articles name them
            full_text=entry.get("full_text", True),
        ))
    digests = [p.digest for p in partners]
    if len(set(digests)) != len(digests):
        raise ConfigError("two partners have the same key; give each partner its own")
    return tuple(partners)


def authenticate(partners: Iterable[Partner], key: str | None) -> Partner | None:
    """The partner whose key this is, or None. Every partner is compared, so timing tells nothing."""
    if not key:
        return None
    digest = _digest(key.strip())
    found = None
    for partner in partners:
        if hmac.compare_digest(partner.digest, digest):
            found = partner
    return found


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()
