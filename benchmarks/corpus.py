"""The benchmark corpus: gen_corpus.py's articles, made once per size and kept in benchmarks/out/corpora/N.

`txt/` is feedsvc's input (the seed's layout, with site chrome); `md/` is the same articles for Hugo. The two
Hugo configurations (hugo-feeds/, hugo-site/) are copied beside them with `content/posts/` linked to `md/`,
as /work/shared/perf/README.md defines them.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
GENERATOR = HERE / "gen_corpus.py"
CATEGORIES = 20
HUGO_CONFIGS = {"feeds": HERE / "hugo-feeds", "site": HERE / "hugo-site"}
DONE = ".complete"  # written last: a corpus interrupted half-way is made again


def ensure_corpus(root: Path, n: int) -> Path:
    """The corpus of n articles under root/n, generated unless a complete one is there."""
    folder = root / str(n)
    if (folder / DONE).exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    subprocess.run([sys.executable, str(GENERATOR), "-n", str(n), "-k", str(CATEGORIES), "-o", str(folder),
                    "--md", "--manifest"], check=True, stderr=subprocess.DEVNULL)
    (folder / DONE).write_text("")
    return folder


def hugo_site(corpus: Path, variant: str) -> Path:
    """corpus/hugo-VARIANT: the versioned configuration, content/posts holding the md/ files (hard links)."""
    site = corpus / f"hugo-{variant}"
    for source in HUGO_CONFIGS[variant].rglob("*"):
        if source.is_file():
            target = site / source.relative_to(HUGO_CONFIGS[variant])
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)  # every time: an edited configuration takes effect
    posts = site / "content" / "posts"
    if not (posts / DONE).exists():
        shutil.rmtree(posts, ignore_errors=True)
        posts.mkdir(parents=True)
        for md in sorted((corpus / "md").iterdir()):
            try:
                os.link(md, posts / md.name)  # Hugo does not follow symbolic links inside content/
            except OSError:
                shutil.copy2(md, posts / md.name)
        (posts / DONE).write_text("")
    return site


def drift(start: Path = HERE) -> dict:
    """The vendored generator and Hugo configurations against the shared originals, when a shared/perf folder
    sits beside the repository or above it: {"originals": path or None, "differs": [relative paths]}."""
    shared = next((folder / "shared" / "perf" for folder in start.parents if (folder / "shared" / "perf").is_dir()), None)
    if shared is None:
        return {"originals": None, "differs": []}
    ours = [GENERATOR, *(p for config in HUGO_CONFIGS.values() for p in sorted(config.rglob("*")) if p.is_file())]
    differs = [p.relative_to(HERE).as_posix() for p in ours
               if not (shared / p.relative_to(HERE)).is_file() or (shared / p.relative_to(HERE)).read_bytes() != p.read_bytes()]
    return {"originals": str(shared), "differs": differs}


def manifest(corpus: Path) -> list[dict]:
    """One entry per article: id, file, category, lang, title, date (gen_corpus.py --manifest)."""
    with open(corpus / "manifest.jsonl", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def newest(corpus: Path) -> dict:
    """The article with the latest date: on the site-wide feed's first page, the worst one to change."""
    return max(manifest(corpus), key=lambda a: (datetime.fromisoformat(a["date"]), a["file"]))


def probe_txt(category: str, title: str) -> str:
    """A new English article in the seed's .txt layout (category, blank, title, two blanks, paragraphs)."""
    body = (f"{title} was written by the benchmark to time how soon a saved file is published. "
            "The newsroom said the report would be updated as the story develops.")
    return f"{category}\n\n{title}\n\n\n{body}\n"


def probe_md(category: str, title: str, date: str) -> str:
    """The same kind of article as Markdown with the front matter gen_corpus.py writes for Hugo."""
    body = (f"{title} was written by the benchmark to time how soon a saved file is published. "
            "The newsroom said the report would be updated as the story develops.")
    return f"---\ntitle: {title}\ndate: {date}\ncategories: [{category}]\ncategory: {category}\n---\n\n{body}\n"
