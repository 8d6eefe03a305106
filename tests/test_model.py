"""feedsvc/model.py: the pipeline's values."""
from __future__ import annotations

import pickle
import tracemalloc
from datetime import datetime, timezone

import pytest

from feedsvc.model import Article, dated

ARABIC = "قال رئيس الوزراء إن الحكومة ستعرض الموازنة الجديدة على البرلمان الأسبوع المقبل. " * 200


def article(**more) -> Article:
    return Article(id="a-1", source="politics/a-1.txt", title="عنوان الخبر", categories=("سياسة",),
                   body_html=f"<p>{ARABIC}</p>", body_text=ARABIC, summary=ARABIC[:200], lang="ar",
                   content_hash="0" * 64, **more)


def test_an_article_pickles_to_an_equal_article_dated_or_not():
    when = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    for value in (article(), dated(article(), when, when), article(draft=True, tags=("a", "b"), guid="urn:uuid:x")):
        copy = pickle.loads(pickle.dumps(value, protocol=5))
        assert copy == value and type(copy) is Article and copy.direction == "rtl"


def test_pickling_an_article_leaves_no_utf8_copy_of_its_text_behind():
    """CPython's pickler keeps a UTF-8 copy inside each non-ASCII str it writes; the builder, which pickles every
    article it commits and keeps its first pages' articles, would hold a second copy of their text."""
    value = article()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        blob = pickle.dumps(value, protocol=5)
        kept = tracemalloc.get_traced_memory()[0] - before - len(blob)
    finally:
        tracemalloc.stop()
    assert len(blob) > 2 * len(ARABIC.encode())  # the body twice (HTML and text), as UTF-8
    assert kept < 4096, kept  # a pickle of the text's str would leave its UTF-8 bytes (tens of kB) in the str


@pytest.mark.parametrize("lang, direction", [
    ("ar", "rtl"), ("ar-EG", "rtl"), ("he", "rtl"), ("ckb", "rtl"), ("en", "ltr"), ("fr-CA", "ltr"),
    # Arabic's varieties and other languages written in Arabic script were laid out left to right (found in review)
    ("arz", "rtl"), ("ary", "rtl"), ("sdh", "rtl"), ("ks", "rtl"), ("syr", "rtl"), ("nqo", "rtl"),
    # a script subtag decides, either way (BCP 47 §2.2.3)
    ("ku-Arab", "rtl"), ("pa-Arab", "rtl"), ("az-Arab", "rtl"), ("ar-Latn", "ltr"), ("az-Latn", "ltr"), ("zh-Hant-TW", "ltr"),
    # only where a script subtag goes, right after the language and its extlangs: ar-EG-u-nu-latn (Arabic with Latin
    # digits, as Android and ICU write it) was laid out left to right
    ("ar-EG-u-nu-latn", "rtl"), ("ar-x-latn", "rtl"), ("en-US-x-arab", "ltr"), ("ar-arb-Latn", "ltr"), ("zh-yue-Arab", "rtl"),
])
def test_text_direction_follows_the_language_and_its_script(lang, direction):
    from feedsvc.model import text_direction

    assert text_direction(lang) == direction


def test_an_article_pickled_before_a_field_was_added_unpickles_with_its_default():
    """The build store keeps pickled articles over an upgrade: one pickled before image_alt was added (a value fewer)
    raised IndexError for a serving process or an export reading it before the new builder wrote it again."""
    import pickle

    from feedsvc import model

    article = model.Article(id="a", source="a.md", title="T", categories=("C",), body_html="<p>b</p>", body_text="b",
                            summary="b", lang="en", content_hash="h", image="http://x/i.png", image_alt="An image")
    function, values = article.__reduce__()  # what a pickle holds: _article and the values in field order
    older = function(*values[:-2])  # as the release before image_alt and recorded pickled it
    assert pickle.loads(pickle.dumps(article)) == article
    assert older.image_alt is None and older.recorded is None and older.image == "http://x/i.png" and older.guid == article.guid
