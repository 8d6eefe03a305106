"""Search beyond Arabic's own letters: Hebrew points folded away as harakat are, and the heh of Urdu (ہ ھ ۂ) and Persian
(ۀ) folded to Arabic ه as ی and ک already fold to ي and ك; through normalise() and through the real app's search feeds."""
from __future__ import annotations

import time
from urllib.parse import quote_plus

import feedparser
import pytest

from feedsvc.searchtext import TABLE, match_expression, normalise
from tests.conftest import write

HEBREW = "אָז יָשִׁיר־מֹשֶׁה וּבְנֵי יִשְׂרָאֵל אֶת־הַשִּׁירָה הַזֹּאת לַיהוָה"  # Exodus 15:1, pointed
URDU = "لاہور میں موسلادھار بارش، بھارت سے آنے والی نہریں بھر گئیں"
PERSIAN = "نامۀ رئیس کتابخانۀ ملی به وزیر فرهنگ"


def search(client, query: str):
    return client.get(f"/search/feed.rss?q={quote_plus(query)}")


def titles(res) -> list[str]:
    assert res.status_code == 200, res.data
    return [entry.title for entry in feedparser.parse(res.data).entries]


@pytest.fixture
def client(make_app, articles_dir):
    """The app over one article in each script (its text pointed or in its own letter forms) and one Arabic one."""
    write(articles_dir, "he.md", f"---\ntitle: \"שִׁירַת הַיָּם\"\ndate: 2026-10-01 10:00\ncategory: תרבות\n---\n{HEBREW}\n")
    write(articles_dir, "ur.md", f"---\ntitle: \"لاہور میں بارش\"\ndate: 2026-10-02 10:00\ncategory: موسم\n---\n{URDU}\n")
    write(articles_dir, "fa.md", f"---\ntitle: \"نامۀ کتابخانۀ ملی\"\ndate: 2026-10-03 10:00\ncategory: فرهنگ\n---\n{PERSIAN}\n")
    write(articles_dir, "ar.md", "---\ntitle: \"مكتبة المدينة\"\ndate: 2026-10-04 10:00\ncategory: ثقافة\n---\n"
                                 "افتتحت المكتبة فرعًا جديدًا في لاهور، وأرسلت رسالة إلى مدرسة هناك.\n")
    app = make_app(articles_dir)
    assert app.extensions["feedsvc.indexer"].wait(30)
    return app.test_client()


# --- the folds themselves ---

@pytest.mark.parametrize("written, plain", [
    ("שִׁירַת", "שירת"), ("יִשְׂרָאֵל", "ישראל"),  # vowel points, shin and sin dots, dagesh
    ("בְּרֵאשִׁ֖ית בָּרָ֣א", "בראשית ברא"),  # cantillation (tipcha, munach) among the points
    ("\ufb2c", "ש"), ("\ufb4b", "ו"), ("\ufb1d", "י"),  # presentation forms: NFKC takes them apart, the points go
    ("ז\ufb1eה", "זה"),  # the Judeo-Spanish varika
    ("ישראל", "ישראל"),  # unpointed text is as it was
])
def test_hebrew_points_are_dropped_as_harakat_are(written, plain):
    assert normalise(written) == plain


def test_hebrew_punctuation_among_the_points_still_parts_words():
    """Maqaf ־, paseq ׀ and sof pasuq ׃ sit inside U+0591-U+05C7 but are punctuation: dropping them would make one word
    of two (כל־העם, a verse's last word and the next verse's first)."""
    assert normalise("כָּל־הָעָם") == "כל־העם"
    assert match_expression("כָּל־הָעָם") == '"כל" "העם"'
    assert match_expression("הָאָרֶץ׃וַיֹּאמֶר") == '"הארץ" "ויאמר"'
    assert match_expression("עַמִּי ׀ אֵלֶּה") == '"עמי" "אלה"'


@pytest.mark.parametrize("written, plain", [
    ("لاہور", "لاهور"),  # heh goal ہ (Urdu)
    ("بھارت", "بهارت"), ("ھندوستان", "هندوستان"),  # heh doachashmee ھ (Urdu aspirates, a first heh)
    ("نغمۂ", "نغمه"), ("نغمہ\u0654", "نغمه"),  # heh goal with hamza ۂ, and ہ + the hamza mark (NFKC: ۂ)
    ("نامۀ", "نامه"), ("کتابخانۀ", "كتابخانه"),  # heh with yeh above ۀ (Persian izafa)
    ("نامە\u0654", "نامه"), ("نامه\u0654", "نامه"),  # ە + the hamza mark (NFKC: ۀ), ه + the hamza mark (a haraka: dropped)
])
def test_urdu_and_persian_heh_fold_to_arabic_heh(written, plain):
    assert normalise(written) == plain


def test_the_heh_folds_go_the_way_of_yeh_and_keheh_to_the_arabic_letter():
    """ی → ي and ک → ك fold Persian and Urdu letters to Arabic ones: heh goes the same way, never Arabic ه to ہ."""
    assert {TABLE[0x06cc], TABLE[0x06a9]} == {0x064a, 0x0643}
    assert {TABLE[cp] for cp in (0x06c1, 0x06be, 0x06c2, 0x06c0)} == {0x0647}
    assert 0x0647 not in TABLE
    assert normalise("پاکستانی") == normalise("پاكستاني") == "پاكستاني"
    assert normalise("مدرسة") == normalise("مدرسہ") == normalise("مدرسه") == "مدرسه"  # ta marbuta, heh goal, heh: one word


def test_the_new_rules_are_in_the_table_the_index_version_is_made_from():
    """search.VERSION hashes TABLE: an index made before these rules holds pointed and ہ-spelt words the new queries
    never match, and is made again because the version it records differs."""
    for cp in (0x0591, 0x05b4, 0x05bc, 0x05c1, 0x05c2, 0x05c7, 0xfb1e):
        assert TABLE[cp] is None
    for cp in (0x05be, 0x05c0, 0x05c3, 0x05c6):  # punctuation stays
        assert cp not in TABLE


def test_a_megabyte_of_pointed_text_is_normalised_in_one_pass_over_it():
    """normalise runs over every article in the background: the points go in the one regex pass that drops harakat and
    the heh forms in a str.replace each, so a megabyte of pointed Hebrew and Urdu is a fraction of a second, not a rule
    that scans again from each point (the tatweel rule once did: 20 minutes for a megabyte)."""
    text = (HEBREW + " " + URDU + " " + PERSIAN + "\n") * (1_000_000 // (len(HEBREW) + len(URDU) + len(PERSIAN)))
    started = time.process_time()  # this process's CPU: a loaded machine's waits do not count
    folded = normalise(text)
    assert time.process_time() - started < 5  # 0.1-0.25 s; a quadratic rule takes minutes
    assert "ישראל" in folded and "لاهور" in folded and "\u05b4" not in folded and "ہ" not in folded


# --- through the app: the index holds the folded text, a query is folded alike ---

@pytest.mark.parametrize("query, found", [
    ("ישראל", "שִׁירַת הַיָּם"), ("שירת", "שִׁירַת הַיָּם"), ("השירה", "שִׁירַת הַיָּם"),  # unpointed finds pointed
    ("יִשְׂרָאֵל", "שִׁירַת הַיָּם"), ("משה", "שִׁירַת הַיָּם"),  # pointed finds it too; a word after a maqaf is a word
    ("بهارت", "لاہور میں بارش"), ("موسلادهار", "لاہور میں بارش"), ("نهریں", "لاہور میں بارش"),  # ھ and ہ as Arabic ه
    ("کتابخانه", "نامۀ کتابخانۀ ملی"), ("نامه", "نامۀ کتابخانۀ ملی"), ("كتابخانه", "نامۀ کتابخانۀ ملی"),
])
def test_a_query_finds_the_article_however_its_script_writes_the_word(client, query, found):
    assert titles(search(client, query)) == [found]


def test_urdu_and_arabic_spellings_of_lahore_find_each_other(client):
    """لاهور (Arabic heh) finds the Urdu article's لاہور, and لاہور finds the Arabic article's لاهور: one word."""
    both = ["مكتبة المدينة", "لاہور میں بارش"]
    assert titles(search(client, "لاهور")) == both
    assert titles(search(client, "لاہور")) == both
    assert titles(search(client, "لاھور")) == both


def test_heh_goal_finds_ta_marbuta_as_heh_does_and_every_word_is_still_required(client):
    assert titles(search(client, "مدرسہ")) == ["مكتبة المدينة"]  # heh goal finds ta marbuta, as ه did
    assert titles(search(client, "ישראל השירה")) == ["שִׁירַת הַיָּם"]
    assert titles(search(client, "ישראל لاهور")) == []  # every word is still required
