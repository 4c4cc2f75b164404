"""Port checks that fail with a clear sentence instead of a traceback."""

from __future__ import annotations

import socket


class PortTaken(RuntimeError):
    pass


def ensure_free(host: str, port: int, what: str, flag: str | None = None) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            hint = f" (choose another with {flag})" if flag else ""
            raise PortTaken(
                f"port {port} on {host} is already in use; {what} needs it{hint}"
            ) from None


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
