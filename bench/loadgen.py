"""Load generator: virtual users logging in through the gateway with real handwriting.

python -m bench.loadgen --target 127.0.0.1:50051 [--users 8] [--impostors 0.2] [--ink scans|strokes]
                        (--concurrency 8 | --rate 20) (--duration 60 | --count 500) [--out build/loadtest]

Each virtual user enrols once with a held-out test writer's digits, then loops
BeginChallenge + SubmitChallenge. Genuine users write the challenge in their own
hand; impostors (a fraction of the loop iterations) write the right digits in
another test writer's hand. Only loopback targets are accepted. Writes
OUT/result.json and OUT/timeline.png.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import random
import secrets
import socket
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

from hwotp.canvas import png_of
from hwotp.client import METADATA_KEY
from hwotp.models import ModelBundle
from hwotp.v1 import gateway_pb2, gateway_pb2_grpc, handwriting_pb2
from local.handwriting import StrokeWriter, Writer, enrolment_request
from local.stack import STATE_FILE, Stack, local_api_key
from training import data, split, strokes, unipen

RPCS = ("BeginChallenge", "SubmitChallenge")
# A load test logs the same users in far faster than people can, reusing each
# writer's few samples: the stack it starts lifts the rate limits and lockout
# thresholds and turns replay detection off (its cost is still paid). Near
# misses do not step up, so that every challenge keeps the measured length.
LOAD_TEST_ENV = {"HWOTP_LOG_LEVEL": "WARNING", "HWOTP_RATE_PER_USER": "100000000",
                 "HWOTP_RATE_PER_CALLER": "100000000", "HWOTP_LOCKOUT_THROTTLE_AFTER": "100000000",
                 "HWOTP_LOCKOUT_DISABLE_AFTER": "100000000", "HWOTP_REPLAY_THRESHOLD": "2",
                 "HWOTP_NEAR_MISS_MARGIN": "0", "HWOTP_STEPUP_DECOY_RATE": "0",
                 "HWOTP_MAX_PENDING_CHALLENGES": "100000000", "HWOTP_CALLER_SUBMITS_PER_MIN": "100000000",
                 "HWOTP_CALLER_ENROLS_PER_MIN": "100000000"}


def require_loopback(target: str) -> None:
    host = target.rsplit(":", 1)[0].strip("[]")
    for info in socket.getaddrinfo(host, None):
        if not ipaddress.ip_address(info[4][0]).is_loopback:
            raise SystemExit(f"refusing to load {target}: only loopback addresses may be targeted")


class Handwriting:
    """Boxes of held-out writers, made once so the generator spends its CPU on calls: PNG images
    of MNIST test writers ("scans"), or UNIPEN test writers' pen strokes ("strokes", as a
    touchscreen sends them; the gateway renders them and the online verifier reads their path)."""

    def __init__(self, writers: int, seed: int = 0, ink: str = "scans"):
        self.writers = []
        if ink == "strokes":
            self._strokes(writers, seed)
        else:
            self._scans(writers, seed)
        if len(self.writers) < 2:
            raise SystemExit("need at least two test writers")

    def _strokes(self, writers: int, seed: int) -> None:
        for writer in stroke_writers(writers, seed):
            probes = {d: [writer.box(i) for i in rows] for d, rows in writer.probes.items()}
            self.writers.append((writer.enrolment(""), probes))

    def _scans(self, writers: int, seed: int) -> None:
        digits = data.load().of_writers(split.load_split()["test"])
        keys = sorted(set(digits.writers.tolist()))
        rng = random.Random(seed)
        rng.shuffle(keys)
        for key in keys:
            mine = digits.writers == key
            counts = np.bincount(digits.digits[mine], minlength=10)
            if counts.min() < 4:  # 3 to enrol and at least one probe of every digit
                continue
            writer = Writer(digits.images[mine], digits.digits[mine])
            probes = {d: [handwriting_pb2.Handwriting(image=png_of(writer.images[i])) for i in rows]
                      for d, rows in writer.probes.items()}
            enrolment = enrolment_request("", writer.images[writer.enrol_index], writer.digits[writer.enrol_index])
            self.writers.append((enrolment, probes))
            if len(self.writers) == writers:
                break

    def enrolment(self, index: int, user_id: str) -> gateway_pb2.EnrollRequest:
        request = gateway_pb2.EnrollRequest()
        request.CopyFrom(self.writers[index][0])
        request.user_id = user_id
        return request

    def write(self, index: int, digits: str, rng: random.Random) -> list:
        probes = self.writers[index][1]
        return [rng.choice(probes[int(c)]) for c in digits]


def stroke_writers(count: int, seed: int = 0) -> list[StrokeWriter]:
    """UNIPEN test writers with three samples of every digit to enrol, all read right (the
    gateway refuses an enrolment with a misread sample), and a probe of each; in an order
    of their own."""
    samples = strokes.samples_of(unipen.samples(), "test")
    recognizer = ModelBundle.load().recognizer
    names = sorted({s.writer for s in samples})
    random.Random(seed).shuffle(names)
    out = []
    for name in names:
        mine = [s for s in samples if s.writer == name]
        digits = np.array([s.digit for s in mine])
        if np.bincount(digits, minlength=10).min() < 4:
            continue
        writer = StrokeWriter([s.strokes for s in mine], digits)
        if (recognizer(writer.fields(writer.enrol_index)).argmax(axis=1) == digits[writer.enrol_index]).all():
            out.append(writer)
        if len(out) == count:
            break
    return out


def arrival_gaps(rate: float, seed: int):
    """Seconds between Poisson arrivals at `rate` per second. They have a generator of
    their own, so every open-loop run with the same seed offers the same bursts, whatever
    the logins draw in between: runs of different builds compare like with like."""
    rng = random.Random(seed)
    while True:
        yield rng.expovariate(rate)


class EnrolmentRefused(Exception):
    """The gateway refused to enrol a virtual user: without users there is no load to make."""


@dataclass
class Record:
    started: float
    latency: dict[str, float] = field(default_factory=dict)
    # open loop: from the login's scheduled arrival until its first call went out,
    # time a login waited on the generator itself; part of what it experienced
    late: float = 0.0
    code: str = "OK"
    reason: str = ""
    impostor: bool = False


class LoadGenerator:
    def __init__(self, target: str, api_key: str, handwriting: Handwriting, users: int, impostors: float,
                 seed: int = 1):
        self.target, self.handwriting = target, handwriting
        self.metadata = ((METADATA_KEY, api_key),)
        # fresh ids each run: re-enrolling an enrolled user needs the owner's proof
        run = secrets.token_hex(3)
        self.users = [f"loadtest-{run}-user-{i}" for i in range(users)]
        self.impostors = impostors
        self.seed, self.rng = seed, random.Random(seed)
        self.records: list[Record] = []

    async def enrol(self, stub) -> None:
        n = len(self.handwriting.writers)
        for i, user in enumerate(self.users):
            try:
                await stub.Enroll(self.handwriting.enrolment(i % n, user), timeout=60, metadata=self.metadata)
            except grpc.aio.AioRpcError as error:
                raise EnrolmentRefused(f"enrolling {user} at {self.target} failed: "
                                       f"{error.code().name}: {error.details()}") from error

    async def one_login(self, stub, user_index: int, scheduled: float | None = None) -> Record:
        n = len(self.handwriting.writers)
        impostor = self.rng.random() < self.impostors
        writer = user_index % n
        if impostor:
            writer = (writer + 1 + self.rng.randrange(n - 1)) % n
        user = self.users[user_index]
        record = Record(time.monotonic(), impostor=impostor)
        try:
            began = time.perf_counter()
            if scheduled is not None:
                record.late = max(0.0, began - scheduled)
            challenge = await stub.BeginChallenge(gateway_pb2.BeginChallengeRequest(user_id=user), timeout=10,
                                                  metadata=self.metadata)
            record.latency["BeginChallenge"] = time.perf_counter() - began
            boxes = self.handwriting.write(writer, challenge.digits, self.rng)
            began = time.perf_counter()
            answer = await stub.SubmitChallenge(gateway_pb2.SubmitChallengeRequest(
                challenge_id=challenge.challenge_id, user_id=user, boxes=boxes), timeout=10, metadata=self.metadata)
            record.latency["SubmitChallenge"] = time.perf_counter() - began
            record.reason = gateway_pb2.Reason.Name(answer.reason)
        except grpc.aio.AioRpcError as error:
            record.code = error.code().name
        self.records.append(record)
        return record

    async def closed_loop(self, stub, concurrency: int, stop) -> None:
        async def user_loop(slot: int):
            i = slot
            while not stop():
                await self.one_login(stub, i % len(self.users))
                i += concurrency

        await asyncio.gather(*(user_loop(s) for s in range(concurrency)))

    async def open_loop(self, stub, rate: float, stop, max_in_flight: int = 256) -> None:
        """Poisson arrivals at `rate` logins/s, whatever the latency. A login's latency counts
        from its scheduled arrival, so one the generator sends late is not flattered
        (no coordinated omission)."""
        pending: set[asyncio.Task] = set()
        gaps = arrival_gaps(rate, self.seed)
        arrival = time.perf_counter()
        i = 0
        while not stop():
            arrival += next(gaps)
            await asyncio.sleep(max(0.0, arrival - time.perf_counter()))
            if len(pending) >= max_in_flight:
                self.records.append(Record(time.monotonic(), code="CLIENT_OVERLOADED"))
                continue
            task = asyncio.create_task(self.one_login(stub, i % len(self.users), scheduled=arrival))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
        if pending:
            await asyncio.gather(*pending)

    async def run(self, concurrency: int | None, rate: float | None, duration: float | None,
                  count: int | None, enrol: bool = True) -> dict:
        async with grpc.aio.insecure_channel(self.target) as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            if enrol:
                await self.enrol(stub)
            self.records = []
            started = time.monotonic()

            def stop() -> bool:
                return (duration is not None and time.monotonic() - started >= duration) or \
                       (count is not None and len(self.records) >= count)

            if rate:
                await self.open_loop(stub, rate, stop)
            else:
                await self.closed_loop(stub, concurrency or 1, stop)
            return summarise(self.records, time.monotonic() - started,
                             {"concurrency": concurrency, "rate": rate, "duration": duration, "count": count,
                              "users": len(self.users), "impostor_share": self.impostors})


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    ms = np.asarray(values) * 1000
    return {"count": len(ms), "p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()), "mean_ms": float(ms.mean())}


def _login_latency(record: Record) -> float:
    return record.late + sum(record.latency.values())


def summarise(records: list[Record], elapsed: float, config: dict) -> dict:
    completed = [r for r in records if r.code == "OK"]
    per_second = defaultdict(list)
    start = min((r.started for r in records), default=0.0)
    for r in completed:
        per_second[int(r.started - start)].append(_login_latency(r))
    genuine = Counter(r.reason for r in completed if not r.impostor)
    impostor = Counter(r.reason for r in completed if r.impostor)
    return {
        "config": config,
        "elapsed_s": round(elapsed, 2),
        "logins": len(records),
        "auth_per_s": len(completed) / elapsed if elapsed else 0.0,
        "errors": sum(1 for r in records if r.code != "OK"),
        "status_codes": dict(Counter(r.code for r in records)),
        "latency": {rpc: _percentiles([r.latency[rpc] for r in completed if rpc in r.latency]) for rpc in RPCS}
                   | {"login": _percentiles([_login_latency(r) for r in completed]),
                      "late": _percentiles([r.late for r in completed])},
        "decisions": {"genuine": dict(genuine), "impostor": dict(impostor)},
        "timeline": [{"second": s, "logins": len(v), "p50_ms": float(np.percentile(v, 50) * 1000),
                      "p99_ms": float(np.percentile(v, 99) * 1000)} for s, v in sorted(per_second.items())],
    }


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timeline = result["timeline"]
    seconds = [t["second"] for t in timeline]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    top.plot(seconds, [t["logins"] for t in timeline])
    top.set(ylabel="logins / s", title=f"hwotp load test: {result['auth_per_s']:.1f} logins/s, {result['errors']} errors")
    bottom.plot(seconds, [t["p50_ms"] for t in timeline], label="p50")
    bottom.plot(seconds, [t["p99_ms"] for t in timeline], label="p99")
    bottom.set(xlabel="second", ylabel="login latency (ms)")
    bottom.legend()
    for axes in (top, bottom):
        axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _drive(generator: LoadGenerator, args: argparse.Namespace) -> dict:
    try:
        return asyncio.run(generator.run(args.concurrency, args.rate, args.duration, args.count))
    except EnrolmentRefused as refused:  # the reason, not a traceback
        raise SystemExit(str(refused)) from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--start-stack", action="store_true",
                        help="start redis-server and the services on free loopback ports (load-test limits) and target them")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--impostors", type=float, default=0.2, help="share of logins written by an impostor")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--concurrency", type=int, default=None)
    mode.add_argument("--rate", type=float, default=None, help="logins per second (open loop)")
    parser.add_argument("--ink", choices=("scans", "strokes"), default="scans",
                        help="PNG images of scanned digits, or touchscreen strokes")
    parser.add_argument("--duration", type=float, default=None, help="seconds")
    parser.add_argument("--count", type=int, default=None, help="logins")
    parser.add_argument("--out", type=Path, default=Path("build/loadtest"))
    parser.add_argument("--api-key", default=os.environ.get("HWOTP_API_KEY"),
                        help="the caller's key (default: $HWOTP_API_KEY, else that of the stack `make up` started)")
    args = parser.parse_args()
    if args.duration is None and args.count is None:
        parser.error("bound the run with --duration or --count")
    if args.concurrency is None and args.rate is None:
        args.concurrency = 8
    if not (args.start_stack or args.api_key or STATE_FILE.exists()):
        parser.error(f"no API key for {args.target}: pass --api-key, set HWOTP_API_KEY, start a stack with "
                     f"`make up` (it writes {STATE_FILE}), or let --start-stack start one")
    data.exit_if_missing()
    handwriting = Handwriting(max(2, args.users), ink=args.ink)
    if args.start_stack:
        with tempfile.TemporaryDirectory() as workdir:
            stack = Stack(Path(workdir), env=LOAD_TEST_ENV).start()
            try:
                result = _drive(LoadGenerator(stack.gateway, stack.api_key, handwriting, args.users, args.impostors),
                                args)
            finally:
                stack.stop()
    else:
        require_loopback(args.target)
        api_key = args.api_key or local_api_key(STATE_FILE)
        result = _drive(LoadGenerator(args.target, api_key, handwriting, args.users, args.impostors), args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(result, args.out / "timeline.png")
    login = result["latency"]["login"]
    print(f"{result['logins']} logins in {result['elapsed_s']} s: {result['auth_per_s']:.1f}/s, "
          f"errors {result['errors']}, login p50 {login.get('p50_ms', 0):.1f} ms p99 {login.get('p99_ms', 0):.1f} ms")
    print("decisions:", json.dumps(result["decisions"]))
    print(f"wrote {args.out / 'result.json'} and {args.out / 'timeline.png'}")


if __name__ == "__main__":
    main()
