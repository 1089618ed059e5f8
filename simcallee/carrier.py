"""Kamailio on loopback playing the carrier between the robot and simulated callees.

One way to start it for the tests and the benches: `kamailio()` renders ``kamailio.cfg.tmpl``
beside this module (one user and password, no database: it digest-challenges every INVITE
and REGISTER and relays authenticated calls, record-routed, to the callee), starts the
Debian package's binary on a free loopback port, waits until it listens, and stops it (its
whole process group) on exit. Calls go to one fixed callee port, or, with ``callee_port``
left out, to the port written in the dialled number (digits 2-6: ``1`` + port + anything).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TEMPLATE = Path(__file__).with_name("kamailio.cfg.tmpl")
PORT_FROM_NUMBER = "$(rU{s.substr,1,5}{s.int})"  # the callee port: the number's digits 2-6
LISTEN_S = 5.0  # Kamailio listens well within this on loopback


class CarrierError(Exception):
    """Kamailio cannot run here: not installed, exited at start, or did not listen."""

    def __init__(self, message: str, log: Path | None = None) -> None:
        super().__init__(message)
        self.log = log  # its output so far, for a test's failure message


def kamailio_binary() -> str | None:
    """The kamailio executable (Debian installs it in /usr/sbin), or None."""
    return shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/sbin")


def free_port() -> int:
    """A port free for both UDP and TCP on loopback right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise CarrierError("no loopback port free for both UDP and TCP")


@dataclass(frozen=True, slots=True)
class Carrier:
    """A running Kamailio: where to dial, and its log (each relay step is a ``CARRIER`` line)."""

    port: int
    log: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def uri(self, user: str) -> str:
        return f"sip:{user}@{self.host}"

    def lines(self, marker: str) -> list[str]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if f"CARRIER {marker}" in line]


def render(port: int, callee_port: int | None, user: str, password: str) -> str:
    """The template with its ``@@NAME@@`` fields filled in."""
    route = PORT_FROM_NUMBER if callee_port is None else str(callee_port)
    values = {"PORT": str(port), "CALLEE_PORT": route, "USER": user, "PASSWORD": password}
    cfg = TEMPLATE.read_text()
    for key, value in values.items():
        cfg = cfg.replace(f"@@{key}@@", value)
    return cfg


@contextlib.contextmanager
def kamailio(
    workdir: Path,
    *,
    user: str,
    password: str,
    callee_port: int | None = None,
    shm_mb: int = 32,
    pkg_mb: int = 4,
) -> Iterator[Carrier]:
    """Kamailio on a free loopback port (config, pid and log in `workdir`); stopped on exit.

    Raises `CarrierError` when the binary is missing or it does not come up listening.
    """
    binary = kamailio_binary()
    if binary is None:
        raise CarrierError("kamailio is not installed (apt kamailio)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cfg, log = workdir / "kamailio.cfg", workdir / "kamailio.log"
    cfg.write_text(render(port, callee_port, user, password))
    argv = [binary, "-f", str(cfg), "-DD", "-E", "-m", str(shm_mb), "-M", str(pkg_mb)]
    argv += ["-Y", str(workdir), "-P", str(workdir / "kamailio.pid"), "-w", str(workdir)]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out, start_new_session=True)
    try:
        _wait_listening(port, proc, log)
        yield Carrier(port, log)
    finally:
        _stop(proc)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + LISTEN_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CarrierError(f"kamailio exited at start (code {proc.returncode})", log)
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise CarrierError(f"kamailio did not listen within {LISTEN_S:g} s", log)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM its process group (it and its children), SIGKILL after 5 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
