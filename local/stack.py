"""Start redis-server and the four services as real processes on loopback.

python -m local.stack up      start in the background (pids in run/), return
python -m local.stack down    stop what `up` started
python -m local.stack run     start, run the demo, serve until Ctrl-C
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hwotp import tls
from hwotp.affinity import cpu_list, spread
from hwotp.client import key_hash
from hwotp.sealing import new_key_entry
from hwotp.subjects import new_key as new_subject_key
from local.redis_server import RedisClusterServers, RedisServer

REPO = Path(__file__).resolve().parent.parent
RUN_DIR = Path(os.environ.get("HWOTP_RUN_DIR") or REPO / "run")  # logs, AOF, stack.json of make run/up
STATE_FILE = RUN_DIR / "stack.json"  # the running stack: pids, addresses, the local caller's API key
_LISTENING = re.compile(r"listening grpc=(\S+) metrics=(\S+)")
SERVICES = (  # order matters: the gateway needs the others' addresses
    ("recognizer", "services.recognizer"),
    ("verifier", "services.verifier"),
    ("challenge", "services.challenge"),
    ("gateway", "gateway"),
)
# How the machine's CPUs are dealt to the services (hwotp.affinity.spread): the
# heaviest per login first, and the recognizer and the verifier, which work side
# by side on every submission, on different CPUs of a two-CPU machine.
PINNING_ORDER = ["gateway", "verifier", "recognizer", "challenge"]


class ServiceProcess:
    def __init__(self, name: str, process: subprocess.Popen, out: Path):
        self.name, self.process, self.out = name, process, out
        self.address = self.metrics_address = ""

    def wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _LISTENING.search(self.out.read_text()) if self.out.exists() else None
            if match:
                self.address, self.metrics_address = match.groups()
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        log = self.out.with_suffix(".log")
        tail = log.read_text()[-2000:] if log.exists() else ""
        raise RuntimeError(f"{self.name} did not start:\n{tail}")

    def signal(self, number: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(number)


def open_channel(address: str, credentials: grpc.ChannelCredentials | None = None) -> grpc.Channel:
    return grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)


def wait_serving(address: str, timeout: float = 30.0, credentials: grpc.ChannelCredentials | None = None) -> None:
    """Poll grpc.health.v1 until SERVING; never sleep-and-hope."""
    deadline = time.monotonic() + timeout
    with open_channel(address, credentials) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.05)
    raise TimeoutError(f"{address} did not become SERVING within {timeout} s")


class Stack:
    """Redis plus the four services: on the configured ports, or on free ones (tests)."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None, fixed_ports: bool = False,
                 detach: bool = False):
        self.workdir, self.detach = Path(workdir), detach
        self.env = {**os.environ, **(env or {})}
        self.fixed_ports = fixed_ports
        # A key for this stack's local caller, unless the environment registers callers itself.
        self.api_key = self.env.get("HWOTP_API_KEY", "")
        if not self.env.get("HWOTP_API_KEYS"):
            self.api_key = secrets.token_urlsafe(32)
            self.env["HWOTP_API_KEYS"] = f"local:{key_hash(self.api_key)}"
            self.env.setdefault("HWOTP_ADMIN_CALLERS", "local")  # the local operator may reset lockouts
        self.redis: RedisServer | None = None
        self.services: dict[str, ServiceProcess] = {}
        # Each service on its own CPUs, unless the environment says where services run
        # (HWOTP_CPUS set, even empty). redis-server and clients stay free to run anywhere.
        self.cpus = {} if "HWOTP_CPUS" in self.env else spread(PINNING_ORDER, sorted(os.sched_getaffinity(0)))

    def _keys(self) -> None:
        """Keys sealing this stack's templates and scoping its users, kept beside its Redis
        data so that enrolments persisted by AOF stay readable across restarts."""
        for variable, name, make in (("HWOTP_TEMPLATE_KEYS", "template.key", lambda: new_key_entry("local")),
                                     ("HWOTP_SUBJECT_KEY", "subject.key", new_subject_key)):
            if self.env.get(variable):
                continue
            key_file = self.workdir / name
            if not key_file.exists():
                key_file.touch(mode=0o600)
                key_file.write_text(make())
            self.env[variable] = key_file.read_text().strip()

    def start(self, timeout: float = 60.0) -> "Stack":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._keys()
        try:
            if not self.env.get("HWOTP_REDIS_URL"):
                # HWOTP_LOCAL_REDIS=cluster: a 6-node Redis Cluster instead of one redis-server
                servers = RedisClusterServers if self.env.get("HWOTP_LOCAL_REDIS") == "cluster" else RedisServer
                self.redis = servers(self.workdir / "redis").start(detach=self.detach)
                self.env.update(self.redis.env())
            for name, module in SERVICES:
                self.start_service(name, module, timeout)
        except BaseException:
            self.stop()  # detached processes would outlive us, and nothing would know their pids
            raise
        return self

    def start_service(self, name: str, module: str, timeout: float = 60.0, role: str = "",
                      port: int = 0) -> ServiceProcess:
        """Start one service; `role` (default: name) picks its settings, so that a
        second gateway replica can be started as name "gateway-2", role "gateway";
        `port`: where it listens (default: its setting, or a free port)."""
        env = dict(self.env)
        role = role or name
        if role in self.cpus:
            env["HWOTP_CPUS"] = cpu_list(self.cpus[role])
        if not self.fixed_ports:
            env[f"HWOTP_{role.upper()}_PORT"] = str(port)
            env[f"HWOTP_{role.upper()}_METRICS_PORT"] = "0"
        for other in ("recognizer", "verifier", "challenge"):
            if other in self.services:
                env[f"HWOTP_{other.upper()}_ADDR"] = self.services[other].address
        out = self.workdir / f"{name}.out"
        out.unlink(missing_ok=True)
        with open(out, "wb") as stdout, open(self.workdir / f"{name}.log", "ab") as stderr:
            process = subprocess.Popen([sys.executable, "-m", module], cwd=REPO, env=env, stdout=stdout,
                                       stderr=stderr, start_new_session=self.detach)
        service = ServiceProcess(name, process, out)
        self.services[name] = service
        service.wait_listening(timeout)
        wait_serving(service.address, timeout, self.credentials)
        return service

    def restart_service(self, name: str, timeout: float = 60.0) -> ServiceProcess:
        """kill -9 one service and start it again on the same port (a crashed pod replaced)."""
        old = self.services[name]
        old.process.kill()
        old.process.wait()
        port = int(old.address.rsplit(":", 1)[1])
        return self.start_service(name, dict(SERVICES)[name], timeout, port=port)

    @property
    def credentials(self) -> grpc.ChannelCredentials | None:
        """How a client of this stack connects: TLS (and a client certificate) when it serves TLS."""
        if not self.env.get("HWOTP_TLS_CERT"):
            return None
        return tls.channel_credentials(self.env["HWOTP_INTERNAL_TLS_CA"], self.env.get("HWOTP_INTERNAL_TLS_CERT", ""),
                                       self.env.get("HWOTP_INTERNAL_TLS_KEY", ""))

    @property
    def gateway(self) -> str:
        return self.services["gateway"].address

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            service.signal(signal.SIGTERM)
        for service in self.services.values():
            try:
                service.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                service.process.kill()
        if self.redis:
            self.redis.stop()

    def describe(self) -> dict:
        return {"redis": self.env["HWOTP_REDIS_URL"], "api_key": self.api_key,
                "pids": {n: s.process.pid for n, s in self.services.items()} | {
                    "redis" if i == 0 else f"redis-{i}": pid for i, pid in enumerate(self.redis.pids if self.redis else [])},
                "addresses": {n: s.address for n, s in self.services.items()},
                "cpus": {n: cpu_list(c) for n, c in self.cpus.items()},
                "metrics": {n: s.metrics_address for n, s in self.services.items()}}


def local_api_key(state_file: Path = STATE_FILE) -> str:
    """The key of the stack `make up` started (run/stack.json)."""
    return json.loads(state_file.read_text())["api_key"]


def _running_pids() -> dict[str, int]:
    """The processes of the stack that STATE_FILE describes which still run. A pid
    counts only while it runs what the stack started there: after a reboot the
    number may belong to some other program, which `down` must not stop."""
    if not STATE_FILE.exists():
        return {}
    command_of = dict(SERVICES)
    alive = {}
    for name, pid in json.loads(STATE_FILE.read_text())["pids"].items():
        try:
            command_line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if command_of.get(name, "redis-server" if name.startswith("redis") else name) in command_line:
            alive[name] = pid
    return alive


def _up(detach: bool) -> Stack:
    if running := _running_pids():
        sys.exit(f"hwotp is already up ({STATE_FILE}: {', '.join(f'{n} {p}' for n, p in running.items())}); "
                 "`make down` stops it")
    stack = Stack(RUN_DIR, fixed_ports=True, detach=detach).start()
    state = stack.describe()
    STATE_FILE.touch(mode=0o600)  # it holds the local caller's API key
    STATE_FILE.write_text(json.dumps(state, indent=1))
    print(f"hwotp is up: gateway on {stack.gateway}, redis {state['redis']}, logs in {RUN_DIR}", flush=True)
    return stack


def _down() -> None:
    """SIGTERM to every process of the stack, again each second to those still running (a Redis
    node writing its first AOF ignores one and does not try again), SIGKILL after 30 s."""
    if not STATE_FILE.exists():
        print(f"nothing to stop (no {STATE_FILE})")
        return
    started, stopping = time.monotonic(), _running_pids()
    while running := _running_pids():
        late = time.monotonic() - started > 30
        for name, pid in running.items():
            try:
                os.kill(pid, signal.SIGKILL if late else signal.SIGTERM)
            except ProcessLookupError:
                pass
        if late:
            print(f"killed {', '.join(running)}: still running after 30 s")
            break
        time.sleep(1)
    for name, pid in stopping.items():
        print(f"stopped {name} (pid {pid})")
    STATE_FILE.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "run"])
    args = parser.parse_args()
    if args.command == "down":
        _down()
        return
    if args.command == "up":
        _up(detach=True)
        return
    from local import demo
    from local.relying_party.server import Demo
    from training import data

    # The services need no data, only the demo's writers do: without them, serve anyway.
    no_demo = data.why_missing()
    # Ctrl-C must stop it even when started as a script's background job, which starts
    # with SIGINT ignored (and Python then raises no KeyboardInterrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stack = _up(detach=False)
    web = None
    try:
        if no_demo:
            print(f"no demo: {no_demo}", flush=True)
        else:
            demo.run(stack.gateway, stack.api_key)
        try:
            web = Demo(stack.gateway, stack.api_key, database=str(RUN_DIR / "demo.sqlite")).start()
            print(f"demo relying party: {web.url} (sign up, enrol, log in; HWOTP_DEMO_HOST/PORT move it)",
                  flush=True)
        except RuntimeError as exc:
            print(f"no web demo: {exc}", flush=True)
        print("serving; Ctrl-C stops", flush=True)
        while all(s.process.poll() is None for s in stack.services.values()):
            time.sleep(0.5)
        print("a service exited; stopping", flush=True)
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
    finally:
        if web:
            web.stop()
        stack.stop()
        STATE_FILE.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
