"""Serve the demo relying party in the background (uvicorn on a thread), for `make run` and the tests."""

from __future__ import annotations

import os
import threading
import time

import uvicorn

from local.relying_party.app import make_app
from local.relying_party.users import Users

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080


class Demo:
    """The demo on host:port (port 0: any free one); `url` once it listens."""

    def __init__(self, gateway: str, api_key: str, database: str = ":memory:", host: str | None = None,
                 port: int | None = None, credentials=None):
        host = host or os.environ.get("HWOTP_DEMO_HOST") or DEFAULT_HOST
        port = int(os.environ.get("HWOTP_DEMO_PORT", DEFAULT_PORT)) if port is None else port
        self.app = make_app(gateway, api_key, Users(database), os.environ.get("HWOTP_DEMO_SECRET"), credentials)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host=host, port=port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="demo")

    def start(self, timeout: float = 15.0) -> "Demo":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:  # uvicorn says when it listens
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the demo relying party did not start (is its port free?)")
            time.sleep(0.02)
        return self

    @property
    def url(self) -> str:
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.app.state.party.channel.close()
