"""The command line: `feedsvc check` lists skipped files and sets the exit code."""
from __future__ import annotations

import json

from click.testing import CliRunner

from feedsvc.cli import main
from tests.conftest import write


def test_check_on_the_sample_folder_finds_nothing_to_skip(sample_dir):
    result = CliRunner().invoke(main, ["check", str(sample_dir)])
    assert result.exit_code == 0, result.output
    assert "0 files skipped" in result.output


def test_check_lists_each_bad_file_with_reason_and_fix_and_exits_1(articles_dir):
    write(articles_dir, "ok.txt", "News\nTitle\nBody.\n")
    write(articles_dir, "empty.txt", "  \n\n")
    write(articles_dir, "notes.docx", "x")
    result = CliRunner().invoke(main, ["check", str(articles_dir)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(line.startswith("empty.txt") and "empty" in line for line in lines)
    assert any(line.startswith("notes.docx") and ".txt and .md" in line for line in lines)


def test_check_json_is_machine_readable(articles_dir):
    write(articles_dir, "solo.txt", "Category only\n")
    result = CliRunner().invoke(main, ["check", "--json", str(articles_dir)])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["articles"] == 0
    assert report["skipped"][0]["file"] == "solo.txt"
    assert "title" in report["skipped"][0]["reason"]


def test_check_names_a_missing_folder(tmp_path):
    result = CliRunner().invoke(main, ["check", str(tmp_path / "nope")])
    assert result.exit_code != 0
    assert "does not exist" in result.output
