"""Services find the Redis master through a real Sentinel when HWOTP_REDIS_SENTINELS is set."""

from __future__ import annotations

import subprocess
import time

import pytest
import redis

from hwotp import config, redis_client
from local.redis_server import RedisServer, free_port, redis_binary

pytestmark = pytest.mark.integration


@pytest.fixture
def sentinel(tmp_path):
    master = RedisServer(tmp_path / "master").start()
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\nsentinel monitor hwotp 127.0.0.1 {master.port} 1\n")
    process = subprocess.Popen([redis_binary(), str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    yield master, port
    process.terminate()
    process.wait(timeout=10)
    master.stop()


def test_master_found_through_sentinel(sentinel):
    master, port = sentinel
    settings = config.load(config.ChallengeSettings, {"HWOTP_REDIS_SENTINELS": f"127.0.0.1:{port}", "HWOTP_REDIS_MASTER_NAME": "hwotp"})
    client = redis_client.connect(settings)
    deadline = time.monotonic() + 10
    while not redis_client.is_up(client) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling until the sentinel answers for the master
    client.set("hwotp:probe", "1")
    assert client.connection_pool.get_master_address() == ("127.0.0.1", master.port)
    assert redis.Redis(port=master.port).get("hwotp:probe") == b"1"
