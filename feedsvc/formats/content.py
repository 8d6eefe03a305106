"""What every format says the same way about an item: its HTML body and its categories."""
from __future__ import annotations

import html

from ..model import Article

GENERATOR = "feedsvc"
GENERATOR_URI = "https://pypi.org/project/feedsvc/"


def wrapped_html(article: Article) -> str:
    """The article body in an element carrying its language and direction, so readers lay RTL out right."""
    lang = html.escape(article.lang, quote=True)
    return f'<div dir="{article.direction}" lang="{lang}">{article.body_html}</div>'


def item_terms(article: Article) -> list[str]:
    """Categories then tags, without repeats."""
    return list(dict.fromkeys(article.categories + article.tags))
