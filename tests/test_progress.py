"""What a running refresh reports for /healthz: since when, and the file it is reading."""
from __future__ import annotations

from feedsvc.reading.progress import Progress, reading
from tests.conftest import write


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_refresh_reports_how_long_it_has_run_and_the_file_it_reads():
    clock = Clock()
    progress = Progress(clock)
    assert progress.now() is None
    with progress.running():
        clock.now += 2.5
        assert progress.now() == (2.5, None)
        with reading("politics/a.txt"):
            assert progress.now() == (2.5, "politics/a.txt")
        assert progress.now() == (2.5, None)
    assert progress.now() is None


def test_reading_outside_a_refresh_notes_nothing():
    with reading("a.txt"):
        pass


class Recording(Progress):
    """A Progress that keeps every file it was told of."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []
        self._file = None

    @property
    def file(self):
        return self._file

    @file.setter
    def file(self, value):
        self._file = value
        if value is not None:
            self.seen.append(value)


def test_the_publisher_reports_each_file_its_refresh_reads(make_publisher, articles_dir):
    write(articles_dir, "a.txt", "News\nTitle\nBody.\n")
    write(articles_dir, "tech/b.md", "---\ntitle: B\ncategory: Tech\n---\nBody.\n")
    publisher = make_publisher(articles_dir)
    publisher.progress = Recording()
    assert publisher.refresh()
    assert sorted(publisher.progress.seen) == ["a.txt", "tech/b.md"]
    assert publisher.progress.now() is None  # and nothing once it is done
