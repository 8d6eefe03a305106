"""A seeded, deterministic corpus of news articles, written for feedsvc, Hugo and Pelican alike.

Same (n, categories, seed) → same files, byte for byte. About 60% Arabic and 40% English; three in four
files in the seed's .txt layout (category line, title, one paragraph per line, chrome trailer), the rest
Markdown with YAML front matter. A .txt file carries no date, so its modification time is set to it.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from . import words

VERSION = 2  # bump when the output changes, so cached corpora are rebuilt
FIRST_DAY = datetime(2016, 1, 1, tzinfo=timezone.utc)
LAST_DAY = datetime(2026, 6, 30, tzinfo=timezone.utc)  # fixed, in the past: no article is embargoed


@dataclass(frozen=True)
class Spec:
    """One generated article, before it is written in any site's format."""

    path: str  # inside the articles folder, without extension: "2019/004213_9f3c…"
    fmt: str  # "txt" or "md"
    lang: str
    category: str
    title: str
    paragraphs: tuple[str, ...]
    date: datetime
    tags: tuple[str, ...]
    author: str


def category_names(k: int) -> list[str]:
    """k category names, about 60% Arabic; names get a number once the lists run out."""
    n_ar = max(1, round(k * 0.6)) if k > 1 else 1
    pick = lambda pool, i: pool[i % len(pool)] + (f" {i // len(pool) + 1}" if i >= len(pool) else "")
    return [pick(words.CATEGORIES_AR, i) for i in range(n_ar)] + [pick(words.CATEGORIES_EN, i) for i in range(k - n_ar)]


def _sentence(rng: random.Random, vocab: list[str], lang: str) -> str:
    chosen = rng.choices(vocab, k=rng.randint(8, 18))
    text = " ".join(chosen)
    return (text[0].upper() + text[1:] + ".") if lang == "en" else text + "."


def _paragraphs(rng: random.Random, vocab: list[str], lang: str) -> tuple[str, ...]:
    target, count, out = rng.randint(300, 900), 0, []
    while count < target:
        sentences = [_sentence(rng, vocab, lang) for _ in range(rng.randint(2, 5))]
        out.append(" ".join(sentences))
        count += sum(s.count(" ") + 1 for s in sentences)
    return tuple(out)


def generate(n: int, k: int = 12, seed: int = 1) -> list[Spec]:
    """n article specs across k categories, the same every time for the same arguments."""
    rng = random.Random(f"feedsvc-corpus/{seed}")
    names = category_names(k)
    n_ar = max(1, round(k * 0.6)) if k > 1 else 1
    arabic, english = names[:n_ar], names[n_ar:] or names[:n_ar]
    span = int((LAST_DAY - FIRST_DAY).total_seconds())
    specs = []
    for i in range(n):
        lang = "ar" if rng.random() < 0.6 else "en"
        vocab = words.ARABIC if lang == "ar" else words.ENGLISH
        date = FIRST_DAY + timedelta(seconds=rng.randrange(span))
        title = " ".join(rng.choices(vocab, k=rng.randint(6, 12)))
        specs.append(Spec(
            path=f"{date.year}/{i:06d}_{rng.getrandbits(64):016x}",
            fmt="md" if rng.random() < 0.25 else "txt",
            lang=lang,
            category=rng.choice(arabic if lang == "ar" else english),
            title=title[0].upper() + title[1:] if lang == "en" else title,
            paragraphs=_paragraphs(rng, vocab, lang),
            date=date,
            tags=tuple(sorted(set(rng.sample(words.TAGS_AR if lang == "ar" else words.TAGS_EN, rng.randint(1, 3))))),
            author=rng.choice(words.AUTHORS_AR if lang == "ar" else words.AUTHORS_EN),
        ))
    return specs


def _yaml(value) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string or list is valid YAML


def feedsvc_text(spec: Spec) -> str:
    """The article as feedsvc reads it: the seed's .txt layout, or Markdown with front matter."""
    if spec.fmt == "txt":
        chrome = words.CHROME_AR if spec.lang == "ar" else words.CHROME_EN
        # The seed separates most paragraphs by a blank line and runs some together.
        body = "".join(p + ("\n" if i % 3 == 2 else "\n\n") for i, p in enumerate(spec.paragraphs))
        return f"{spec.category}\n\n{spec.title}\n\n\n{body}\n" + "\n".join(chrome)
    front = [f"title: {_yaml(spec.title)}", f"date: {spec.date:%Y-%m-%d %H:%M:%S}+00:00", f"category: {_yaml(spec.category)}",
             f"tags: {_yaml(list(spec.tags))}", f"author: {_yaml(spec.author)}", f"lang: {spec.lang}"]
    return "---\n" + "\n".join(front) + "\n---\n" + _markdown_body(spec)


def _markdown_body(spec: Spec) -> str:
    parts = list(spec.paragraphs)
    if len(parts) > 4:  # a subheading in longer articles, as editors write them
        parts.insert(len(parts) // 2, "## " + " ".join(spec.title.split()[:4]))
    return "\n\n".join(parts) + "\n"


def hugo_text(spec: Spec) -> str:
    """The article as a Hugo content file, its category in the `categories` taxonomy."""
    front = [f"title: {_yaml(spec.title)}", f"date: {spec.date.isoformat()}", f"categories: {_yaml([spec.category])}",
             f"tags: {_yaml(list(spec.tags))}", f"author: {_yaml(spec.author)}"]
    return "---\n" + "\n".join(front) + "\n---\n" + _markdown_body(spec)


def pelican_text(spec: Spec) -> str:
    """The article as a Pelican Markdown file with its metadata block."""
    meta = [f"Title: {spec.title}", f"Date: {spec.date:%Y-%m-%d %H:%M:%S}", f"Category: {spec.category}",
            f"Tags: {', '.join(spec.tags)}", f"Authors: {spec.author}", f"Slug: {spec.path.replace('/', '-')}"]
    return "\n".join(meta) + "\n\n" + _markdown_body(spec)


def write_feedsvc(specs: list[Spec], root: Path) -> None:
    """Write the articles folder feedsvc reads; .txt files get their date as modification time."""
    for spec in specs:
        path = root / f"{spec.path}.{spec.fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(feedsvc_text(spec), encoding="utf-8")
        stamp = spec.date.timestamp()
        os.utime(path, (stamp, stamp))


def write_hugo(specs: list[Spec], content: Path) -> None:
    """Write Hugo content files under content/articles/<year>/."""
    for spec in specs:
        path = content / "articles" / f"{spec.path}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(hugo_text(spec), encoding="utf-8")


def write_pelican(specs: list[Spec], content: Path) -> None:
    """Write Pelican content files under content/<year>/."""
    for spec in specs:
        path = content / f"{spec.path}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(pelican_text(spec), encoding="utf-8")


def ensure_corpus(base: Path, n: int, k: int = 12, seed: int = 1) -> Path:
    """A folder with articles/, hugo/content/ and pelican/content/ for (n, k, seed), made once and reused."""
    folder = base / f"corpus-{n}-k{k}-s{seed}"
    marker = folder / "complete.json"
    stamp = {"version": VERSION, "n": n, "k": k, "seed": seed}
    if marker.is_file() and json.loads(marker.read_text()) == stamp:
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    specs = generate(n, k, seed)
    write_feedsvc(specs, folder / "articles")
    write_hugo(specs, folder / "hugo" / "content")
    write_pelican(specs, folder / "pelican" / "content")
    marker.write_text(json.dumps(stamp))
    return folder


def main() -> None:
    """`python -m benchmarks.corpus N DIR [--categories K] [--seed S]`: write a corpus folder."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("n", type=int)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--categories", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(ensure_corpus(args.dir, args.n, args.categories, args.seed))


if __name__ == "__main__":
    main()
