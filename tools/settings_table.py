"""The README's settings table, generated from feedsvc.config.SETTINGS (names, defaults, help): one rule per fact.

    python tools/settings_table.py            # print the table
    python tools/settings_table.py --write    # replace the table in README.md
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
HEADER = "| setting | default | what |"


def default_cell(value: object) -> str:
    """A default as the README shows it: TOML-ish literals in code spans."""
    if value == "":
        return "*(empty)*"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (list, dict)):
        return f"`{json.dumps(value, ensure_ascii=False)}`"
    return f"`{value}`"


def settings_table() -> str:
    """Every setting as one Markdown table row, in the order of SETTINGS."""
    sys.path.insert(0, str(ROOT))
    from feedsvc.config import SETTINGS

    rows = [HEADER, "|---|---|---|"]
    rows += [f"| `{s.name}` | {default_cell(s.default)} | {s.help.replace('|', chr(92) + '|')} |" for s in SETTINGS]
    return "\n".join(rows)


def readme_table(text: str) -> tuple[int, int]:
    """The first and past-the-last line numbers of the settings table in the README's text."""
    lines = text.splitlines()
    start = lines.index(HEADER)
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return start, end


def write_readme() -> None:
    """Replace the README's settings table with the generated one."""
    lines = README.read_text(encoding="utf-8").splitlines(keepends=True)
    start, end = readme_table("".join(lines))
    lines[start:end] = [row + "\n" for row in settings_table().splitlines()]
    README.write_text("".join(lines), encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write_readme()
    elif sys.argv[1:]:
        sys.exit(__doc__)
    else:
        print(settings_table())
