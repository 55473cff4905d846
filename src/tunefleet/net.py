"""Network helpers that any layer may use (no Ray, no MLflow): is anything listening there?"""

from __future__ import annotations

import socket


def tcp_problem(host: str, port: int, timeout_s: float = 5.0) -> str | None:
    """Why nothing answers a TCP connect to host:port (None if something does).

    A server's own client (Ray's, MLflow's) retries for minutes before it gives up; a
    plain connect tells in milliseconds.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as err:
        return err.strerror or type(err).__name__
