"""The load generator: Debian's wrk, run for a bounded time against a loopback URL, its report parsed."""
from __future__ import annotations

import re
import shutil
import subprocess

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def parse(report: str) -> dict:
    """Requests per second, p50/p99 latency in ms, request count and errors out of wrk's --latency report."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", report).group(1))
    latency = {m.group(1): _ms(m.group(2)) for m in re.finditer(r"^\s+(50|99)(?:\.000)?%\s+(\S+)", report, re.MULTILINE)}
    total = re.search(r"(\d+) requests in", report)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    return {
        "rps": rps,
        "p50_ms": latency.get("50"),
        "p99_ms": latency.get("99"),
        "requests": int(total.group(1)) if total else None,
        "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
        "non_2xx_3xx": int(bad.group(1)) if bad else 0,
    }


def run(url: str, headers: dict[str, str], seconds: int = 5, threads: int = 2, connections: int = 32) -> dict:
    """One bounded wrk run against a loopback URL."""
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError(f"wrk only runs against loopback, not {url}")
    cmd = [shutil.which("wrk") or "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "--latency"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    done = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60, check=True)
    result = parse(done.stdout)
    result["seconds"] = seconds
    return result
