"""Run the service in the background for the demo: ``python -m service.launch start|stop``.

``start`` takes the API key from PVCAST_API_KEY (or the one saved in .pvcast/api_key, or makes one), gives
the service only its SHA-256 digest, starts ``bentoml serve`` on PORT (default 3000), waits for /readyz,
asks it for a forecast of every registered park, checks the answers and prints a curl command that works.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from pydantic import Field

from feature_repo.store import registered_parks
from pvcast.keys import hash_key, new_key
from pvcast.settings import PvcastSettings, child_environment

logger = logging.getLogger("pvcast.launch")
STATE = Path(".pvcast")


class LaunchSettings(PvcastSettings):
    """The demo launcher's own settings: the key to use and the port."""

    api_key: str | None = Field(default=None, description="The demo's key (default: .pvcast/api_key)")
    port: int = Field(default=3000, validation_alias="PORT")


def api_key(settings: LaunchSettings) -> str:
    if settings.api_key:
        return settings.api_key
    saved = STATE / "api_key"
    if not saved.exists():
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(new_key())
        saved.chmod(0o600)
    return saved.read_text().strip()


def stop() -> None:
    pid_file = STATE / "serve.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
        logger.info("stopped the service (pid %d)", pid)
    except ProcessLookupError:
        pass
    pid_file.unlink()


def start(port: int, key: str) -> subprocess.Popen[bytes]:
    entry = [{"name": "demo", "sha256": hash_key(key), "scopes": ["read", "write", "admin"]}]
    # the service sees only the digest
    env = child_environment({"PVCAST_API_KEYS": json.dumps(entry)}, drop=("PVCAST_API_KEY",))
    log = (STATE / "serve.log").open("wb")
    cmd = [sys.executable, "-m", "bentoml", "serve", "service.service:PVCast", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (STATE / "serve.pid").write_text(str(proc.pid))
    return proc


class ServiceStartError(RuntimeError):
    """``bentoml serve`` exited or did not become ready; the message ends with the tail of its log."""


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 180.0) -> None:
    """Block until ``url``/readyz answers 200; ServiceStartError if ``proc`` exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceStartError(f"the service exited during start-up; see {log}:\n{tail(log)}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise ServiceStartError(f"the service was not ready after {timeout:.0f} s; see {log}:\n{tail(log)}")


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM the process group of ``proc`` (a ``start_new_session`` child), SIGKILL after ``timeout``."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def check_forecasts(url: str, key: str, park_ids: list[str]) -> None:
    """Ask for 24 h for every park and check the physics of the answer."""
    for park in park_ids:
        reply = httpx.post(
            f"{url}/forecast",
            json={"park_id": park, "horizon_hours": 24},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        reply.raise_for_status()
        data = reply.json()
        steps = data["forecast"]
        cap = data["capacity_ac_kw"]
        ordered = all(s["p10"] <= s["p50"] <= s["p90"] for s in steps)
        bounded = all(0 <= s[q] <= cap for s in steps for q in ("p10", "p50", "p90"))
        night = sum(1 for s in steps if s["p90"] == 0)
        peak = max(s["p50"] for s in steps)
        logger.info(
            "%s: %d steps, P50 peak %.0f kW of %.0f, %d zero (night) steps, ordered=%s, within [0, capacity]=%s",
            park,
            len(steps),
            peak,
            cap,
            night,
            ordered,
            bounded,
        )
        if len(steps) != 96 or not (ordered and bounded):
            raise SystemExit(f"forecast check failed for {park}")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = LaunchSettings()
    parser = argparse.ArgumentParser(prog="python -m service.launch")
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args()
    stop()
    if args.action == "stop":
        return
    key, url = api_key(settings), f"http://127.0.0.1:{args.port}"
    proc = start(args.port, key)
    try:
        wait_ready(proc, url, STATE / "serve.log")
    except ServiceStartError as exc:
        raise SystemExit(str(exc)) from None
    parks = [p.park_id for p in registered_parks(settings.store)]
    check_forecasts(url, key, parks)
    sys.stdout.write(
        f"\npvcast is serving on {url} (pid {proc.pid}; log {STATE / 'serve.log'}; stop with `make stop`).\n"
        f"API key: {key}\nTry:\n\n"
        f"  curl -s -X POST {url}/forecast -H 'Authorization: Bearer {key}' "
        f'-H \'Content-Type: application/json\' -d \'{{"park_id": "{parks[0]}", "horizon_hours": 24}}\'\n\n'
        f"API docs: {url}/docs\n"
    )


if __name__ == "__main__":
    main()
