"""The package layout is the architecture (README "Architecture"): reading → building → store → serving.

Every module's imports are read with `ast` — at the top, inside functions and under TYPE_CHECKING alike — and
each must point the allowed way: reading/ imports only neutral modules; building/ imports reading/ and neutral
ones; serving/ imports only neutral ones (it answers from the store, never from files or a build); the
neutral modules import no stage; nothing imports the entry points (cli, server, gunicorn_conf, __main__).
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "feedsvc"
STAGES = ("reading", "building", "serving")
# The wiring: what puts the stages together into processes. Any of them may import anything; nothing imports them,
# but the package itself (create_app, state_path), which the dedicated builder process starts from.
ENTRY = {"feedsvc.cli", "feedsvc.server", "feedsvc.gunicorn_conf", "feedsvc.__main__"}
WIRING = ENTRY | {"feedsvc"}
ALLOWED = {  # a module's group → the stages it may import
    "reading": set(),
    "building": {"reading"},
    "serving": set(),
    "neutral": set(),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def group(name: str) -> str:
    parts = name.split(".")
    if name in WIRING:
        return "wiring"
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else "neutral"


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every feedsvc module this file imports; `from X import y` counts X.y when that is a module."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                is_module = any((PACKAGE.parent / Path(*candidate.split("."))).with_suffix(s).exists() for s in (".py",)) \
                    or (PACKAGE.parent / Path(*candidate.split(".")) / "__init__.py").exists()
                found.append((node.lineno, candidate if is_module else source))
    return [(line, module) for line, module in found if module == "feedsvc" or module.startswith("feedsvc.")]


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_checked():
    names = {module_name(p) for p in MODULES}
    assert {"feedsvc.reading.scan", "feedsvc.building.builder", "feedsvc.serving.web", "feedsvc.store",
            "feedsvc.formats.rss"} <= names
    for stage in STAGES:
        assert (PACKAGE / stage / "__init__.py").read_text(encoding="utf-8").startswith('"""'), f"{stage}/ says what it owns"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_point_the_allowed_way(path: Path):
    name, mine = module_name(path), group(module_name(path))
    if mine == "wiring" and name != "feedsvc":
        return  # the entry points put the stages together
    wrong = []
    for line, target in imported(path):
        theirs = group(target)
        if target in ENTRY:
            wrong.append(f"line {line}: {target} (an entry point)")
        elif theirs == "wiring":  # the package itself: create_app, state_path
            if mine != "building" and name != "feedsvc":
                wrong.append(f"line {line}: {target} (the wiring: only the builder process starts from it)")
        elif name == "feedsvc":
            continue  # create_app wires every stage
        elif theirs in STAGES and theirs != mine and theirs not in ALLOWED[mine]:
            wrong.append(f"line {line}: {target} ({mine} must not import {theirs}/)")
    assert not wrong, f"{name} imports against the architecture: " + "; ".join(wrong)


def test_the_check_catches_a_wrong_import(tmp_path, monkeypatch):
    """The rule fails on what it is for: a serving module that imports building/ or reading/."""
    fake = tmp_path / "feedsvc" / "serving"
    fake.mkdir(parents=True)
    (tmp_path / "feedsvc" / "building").mkdir()
    (tmp_path / "feedsvc" / "building" / "render.py").write_text("")
    (fake / "web.py").write_text("def f():\n    from ..building.render import Renderer\n    from feedsvc.reading import scan\n")
    (tmp_path / "feedsvc" / "reading").mkdir()
    (tmp_path / "feedsvc" / "reading" / "scan.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "feedsvc")
    with pytest.raises(AssertionError, match=r"building\.render \(serving must not import building/\).*reading\.scan"):
        test_imports_point_the_allowed_way(fake / "web.py")


def test_every_module_path_the_readme_names_exists():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"\bfeedsvc/[\w/]+\.py\b", readme))
    assert named, "the README names module paths"
    assert not {path for path in named if not (PACKAGE.parent / path).is_file()}


def test_the_readmes_architecture_names_every_module():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    missing = [module_name(p) for p in MODULES
               if p.name not in ("__init__.py", "__main__.py") and not re.search(rf"\b{re.escape(p.name)}\b", section)]
    assert not missing, f"README \"Architecture\" does not name {missing}"


# --- what each process loads ------------------------------------------------------------------------

# Loaded only where files are read or feeds rendered: never by `feedsvc serve`'s master, nor by a serving worker
# that answers from the store (each of the four workers and the master would otherwise hold them: issue 10's
# memory targets count every process of the tree).
BUILDER_ONLY = ("lxml", "feedgen", "feedsvc.reading", "feedsvc.building.site", "feedsvc.building.scheduler", "yaml",
                "charset_normalizer", "cmarkgfm", "nh3", "watchdog", "apscheduler", "py3langid")
_PROCESS = '''
import fcntl, json, os, sys, tempfile
folder = tempfile.mkdtemp()
settings = {"ARTICLES_DIR": sys.argv[2], "STATE_PATH": folder + "/state.db"}
if sys.argv[1] == "master":  # what `feedsvc serve` does before gunicorn forks its workers
    from feedsvc import cli
    from feedsvc.config import load_settings
    from feedsvc.server import gunicorn_settings, preflight, start_builder, with_builder
    preflight(load_settings(settings))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    builder = start_builder(settings)
    gunicorn_settings(), with_builder(builder)
    builder.terminate(), builder.wait()
elif sys.argv[1] == "builder":  # the dedicated builder's wiring (feedsvc.building.builder.main) and a first build
    from feedsvc import for_building
    from feedsvc.building.builder import start_building
    start_building(for_building(settings), release=True).refresh()
else:  # a serving worker, with a builder elsewhere holding the build lock
    lock = os.open(folder + "/state.db.build-lock", os.O_RDWR | os.O_CREAT)
    parent = os.getpid()
    if os.fork() == 0:  # the builder: holds the lock until this process has gone
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.close(1), os.close(2)
        import time
        while os.getppid() == parent:
            time.sleep(0.05)
        os._exit(0)
    import time; time.sleep(0.2)
    from feedsvc.server import asgi_app
    asgi_app(settings)
    time.sleep(0.2)
print(json.dumps(sorted(m for m in sys.modules)))
sys.stdout.flush()
os._exit(0)
'''


def test_the_master_forks_its_builder_before_it_imports_gunicorn(tmp_path):
    """`feedsvc serve` starts its builder (a cold start's longest chain) before it imports gunicorn: what the command
    has imported when it calls start_builder holds no gunicorn module (its logger alone is 10-20 ms of imports)."""
    import json
    import subprocess

    script = ("import json, sys\nfrom feedsvc import cli\n"
              "from feedsvc.server import ServeError, asgi_app, check_port, gunicorn_settings, preflight, site_url_for, "
              "site_url_warning, start_builder, with_builder\n"
              "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'gunicorn')))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                         env={"PYTHONPATH": str(PACKAGE.parent), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("process", ["master", "worker"])
def test_serving_processes_load_no_reading_or_rendering_code(process, tmp_path):
    loaded = _loaded(process, tmp_path)
    assert [m for m in loaded if m.startswith(BUILDER_ONLY)] == []
    if process == "master":  # it never serves a request either
        assert "flask" not in loaded
    # Of building/, a worker loads the lock it waits on to take over and the builder's status (README, Architecture);
    # the builder (its Committer, store writer and search index) only once it wins the lock. The master forks the
    # builder (builder.spawn). Both open the state store (state.py).
    allowed = {"feedsvc.building.lock", "feedsvc.building.state"} | ({"feedsvc.building.builder", "feedsvc.building.rebase",
                                                                    "feedsvc.building.storewriter"}
                                                                   if process == "master" else set())
    assert {m for m in loaded if m.startswith("feedsvc.building.")} <= allowed


def test_the_dedicated_builder_builds_without_flask_or_werkzeug(tmp_path):
    loaded = _loaded("builder", tmp_path)
    assert "feedsvc.building.site" in loaded and "flask" not in loaded  # it built, and serves nothing
    assert "werkzeug" not in loaded  # 11 MiB of the builder's memory, for one date format (resource.http_date)


def test_a_reading_worker_of_a_folder_without_front_matter_loads_no_yaml_dateutil_or_http_client():
    import json
    import subprocess

    code = ("import json, sys\nfrom feedsvc.reading.articles import read_article\nfrom feedsvc.reading.pool import work\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(PACKAGE.parent), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout)
    # Each is imported when first needed (a front matter, a date written as text, a WebSub hub): 20 ms of each
    # reading worker's start on a cold start's critical path.
    assert not [m for m in loaded if m.split(".")[0] in ("yaml", "dateutil") or m in ("urllib.request", "http.client")]


def _loaded(process: str, tmp_path) -> list[str]:
    """The modules a process of this kind has loaded (_PROCESS), over a one-article folder."""
    import json
    import subprocess

    (tmp_path / "a.txt").write_text("News\nTitle\nBody.\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-c", _PROCESS, process, str(tmp_path)], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path, env={"PYTHONPATH": str(PACKAGE.parent), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])
