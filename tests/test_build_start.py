"""`feedsvc build` starts as a build needs: the wiring without Flask (it serves no request), and the cyclic collector
tuned for one pass over a heap that only grows, then put back as it was."""
from __future__ import annotations

import gc
import json
import subprocess
import sys

from click.testing import CliRunner

from feedsvc import cli
from feedsvc.building import builder
from tests.conftest import ROOT, SAMPLE_ARTICLES

_BUILD = '''
import json, sys
from feedsvc.cli import main
main(["build", "--out", sys.argv[1], "--articles", sys.argv[2]], standalone_mode=False)
print(json.dumps(sorted(sys.modules)))
'''


def test_a_build_loads_neither_flask_nor_werkzeug(tmp_path):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "FEEDSVC_STATE_PATH": str(tmp_path / "state.db"),
           "FEEDSVC_CONFIG": str(tmp_path / "absent.toml"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", _BUILD, str(tmp_path / "out"), str(SAMPLE_ARTICLES)], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "feedsvc.building.site" in loaded and (tmp_path / "out" / "feed.rss").is_file()  # it built and exported
    assert [m for m in loaded if m.split(".")[0] in ("flask", "werkzeug")] == []


def test_a_build_collects_less_often_and_leaves_the_collector_as_it_was(sample_dir, tmp_path, monkeypatch):
    seen = []
    export = cli._export

    def watched(*args, **kwargs):
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        return export(*args, **kwargs)

    monkeypatch.setattr(cli, "_export", watched)
    before = gc.get_threshold()
    env = {"FEEDSVC_STATE_PATH": str(tmp_path / "state.db"), "FEEDSVC_CONFIG": str(tmp_path / "absent.toml")}
    result = CliRunner().invoke(cli.main, ["build", "--out", str(tmp_path / "out"), "--articles", str(sample_dir)], env=env)
    assert result.exit_code == 0, result.output
    (threshold, frozen), = seen
    assert threshold == builder.ARCHIVE_GC_THRESHOLDS and frozen > 0  # the modules and the wiring, frozen
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
