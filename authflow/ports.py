"""Port checks that fail with a clear sentence instead of a traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass


class PortTaken(RuntimeError):
    pass


@dataclass(frozen=True)
class PortNeed:
    """A port one part of the stack will listen on, and the flag or variable that moves it."""

    host: str
    port: int
    what: str
    flag: str | None = None

    def describe(self) -> str:
        hint = f" (choose another with {self.flag})" if self.flag else ""
        return f"port {self.port} on {self.host} is already in use; {self.what} needs it{hint}"


def is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def ensure_all_free(needs: Iterable[PortNeed]) -> None:
    """Check every port before complaining, so one run names every clash (not one per rerun)."""
    busy = [need for need in needs if not is_free(need.host, need.port)]
    if len(busy) == 1:
        raise PortTaken(busy[0].describe())
    if busy:
        lines = "\n".join(f"  - {need.describe()}" for need in busy)
        raise PortTaken(f"{len(busy)} ports are already in use:\n{lines}")


def ensure_free(host: str, port: int, what: str, flag: str | None = None) -> None:
    ensure_all_free([PortNeed(host, port, what, flag)])


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def is_listening(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
