"""Faults under load against a real Redis Cluster: python -m bench.faults [--seconds 8] [--out bench/faults.json]

Starts a stack on a 6-node Redis Cluster (three primaries, a replica each, all on
loopback), enrols users (UNIPEN test writers, as strokes), and keeps logins
running from several threads: genuine answers, impostors (another writer's hand
writing the right digits) and attacks (the user's own hand writing the wrong
digits), and after each accepted answer the same challenge submitted again.
Each user's genuine probes are ones the models accept and each impostor's ones
the writer check rejects against that user (local.verdicts), so that every
accepted impostor, attack or second submission is the system's fault, not a
model's error. Enrolments continue during the run. Meanwhile, one after the
other:

  primary   kill -9 of a Redis primary: its replica is promoted
  service   kill -9 of the verifier, started again on its port
  redis     every Redis node stopped, then started again from its AOF

Per fault: the calls that failed (non-OK status) from the fault until logins
were accepted again, that time to recover, and the false accepts and double
redemptions in that window; over the whole run the same, and acknowledged
enrolments lost (checked once all faults are over). Writes the report as JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

from bench.loadgen import LOAD_TEST_ENV, stroke_writers
from hwotp.client import gateway_channel, gateway_stub
from hwotp.models import STROKES, ModelBundle
from hwotp.v1 import gateway_pb2
from local.handwriting import StrokeWriter
from local.stack import Stack
from local.verdicts import keep_certain

REPO = Path(__file__).resolve().parent.parent
FAULTS = ("primary", "service", "redis")
RECOVERY_GUARD_S = 120  # a guard against a run that never recovers, not a target


@dataclass
class Call:
    started: float
    ended: float
    kind: str  # "genuine", "impostor", "attack" (wrong digits), "again" (a used challenge), "enrol"
    outcome: str  # the decision (ACCEPT / REJECT), "OK" for an enrolment, or the status code


@dataclass
class Run:
    calls: list[Call] = field(default_factory=list)
    enrolled: list[str] = field(default_factory=list)  # acknowledged enrolments
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)


def _wrong(digits: str) -> str:
    return "".join(str((int(c) + 1) % 10) for c in digits)


@dataclass
class User:
    name: str
    own: StrokeWriter  # their probes the models accept
    impostor: StrokeWriter  # another writer's probes the writer check rejects against them


def _logins(gateway, users: list[User], run: Run, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    draw = np.random.default_rng(seed)
    while not stop.is_set():
        user = rng.choice(users)
        kind = rng.choices(("genuine", "impostor", "attack"), weights=(6, 2, 2))[0]
        started = time.monotonic()
        try:
            challenge = gateway.BeginChallenge(gateway_pb2.BeginChallengeRequest(user_id=user.name), timeout=5)
            if kind == "attack":
                boxes = user.own.write(_wrong(challenge.digits), draw)
            else:
                boxes = (user.own if kind == "genuine" else user.impostor).write(challenge.digits, draw)
            request = gateway_pb2.SubmitChallengeRequest(challenge_id=challenge.challenge_id, user_id=user.name,
                                                          boxes=boxes)
            answer = gateway.SubmitChallenge(request, timeout=5)
            run.add(Call(started, time.monotonic(), kind, gateway_pb2.Decision.Name(answer.decision)))
            if answer.decision == gateway_pb2.ACCEPT:
                again = time.monotonic()
                second = gateway.SubmitChallenge(request, timeout=5)
                run.add(Call(again, time.monotonic(), "again", gateway_pb2.Decision.Name(second.decision)))
        except grpc.RpcError as error:
            run.add(Call(started, time.monotonic(), kind, error.code().name))
            stop.wait(0.05)


def _enrolments(gateway, users: list[User], run: Run, stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        user = f"late-{n}"
        n += 1
        started = time.monotonic()
        try:
            gateway.Enroll(users[n % len(users)].own.enrolment(user), timeout=10)
            run.add(Call(started, time.monotonic(), "enrol", "OK"))
            with run.lock:
                run.enrolled.append(user)
        except grpc.RpcError as error:
            run.add(Call(started, time.monotonic(), "enrol", error.code().name))
        stop.wait(0.2)


def _inject(stack: Stack, fault: str) -> None:
    if fault == "primary":
        victim = stack.redis.primaries()[0]
        victim.kill()
        stack.redis.wait_until_ok()  # its replica promoted
    elif fault == "service":
        stack.restart_service("verifier")
    else:
        stack.redis.stop()
        stack.redis.start()


def _recovered_after(run: Run, since: float) -> float | None:
    with run.lock:
        accepted = [c.ended for c in run.calls if c.kind == "genuine" and c.outcome == "ACCEPT" and c.started > since]
    return min(accepted) if accepted else None


def _false_accepts(calls: list[Call]) -> int:
    return sum(c.kind in ("impostor", "attack") and c.outcome == "ACCEPT" for c in calls)


def _double_redemptions(calls: list[Call]) -> int:
    return sum(c.kind == "again" and c.outcome == "ACCEPT" for c in calls)


def _still_enrolled(gateway, user: str) -> bool:
    try:
        gateway.BeginChallenge(gateway_pb2.BeginChallengeRequest(user_id=user), timeout=10)
        return True
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return False
        raise


def _users(count: int) -> list[User]:
    """Pairs of UNIPEN test writers, each victim's probes and the next writer's against them
    kept only where the models' decision is certain; pairs where none is left are skipped."""
    bundle, writers, users = ModelBundle.load(), stroke_writers(count + 1), []
    for victim, other in zip(writers, writers[1:]):
        own, impostor = StrokeWriter(victim.strokes, victim.digits), StrokeWriter(other.strokes, other.digits)
        try:
            keep_certain(bundle, own, impostor, STROKES)
        except ValueError:
            continue
        users.append(User(f"user-{len(users)}", own, impostor))
    if len(users) < 2:
        raise SystemExit("fewer than two test writers with probes of certain decisions")
    return users


def run_faults(seconds: float, users: int = 6, threads: int = 3, faults=FAULTS) -> dict:
    people = _users(users)
    report: dict = {"seconds_between_faults": seconds, "users": len(people), "faults": {}}
    with tempfile.TemporaryDirectory() as workdir:
        stack = Stack(Path(workdir), env={**LOAD_TEST_ENV, "HWOTP_LOCAL_REDIS": "cluster"}).start()
        try:
            with gateway_channel(stack.gateway, stack.api_key) as channel:
                gateway = gateway_stub(channel)
                run = Run()
                for user in people:
                    gateway.Enroll(user.own.enrolment(user.name), timeout=30)
                    run.enrolled.append(user.name)
                stop = threading.Event()
                workers = [threading.Thread(target=_logins, args=(gateway, people, run, stop, seed))
                           for seed in range(threads)]
                workers.append(threading.Thread(target=_enrolments, args=(gateway, people, run, stop)))
                for worker in workers:
                    worker.start()
                try:
                    time.sleep(seconds)  # steady load before the first fault
                    for fault in faults:
                        began = time.monotonic()
                        _inject(stack, fault)
                        injected = time.monotonic()
                        deadline = injected + RECOVERY_GUARD_S
                        while (back := _recovered_after(run, injected)) is None and time.monotonic() < deadline:
                            time.sleep(0.05)
                        with run.lock:
                            window = [c for c in run.calls if began <= c.ended and (back is None or c.started <= back)]
                        report["faults"][fault] = {
                            "calls_failed": sum(c.outcome not in ("ACCEPT", "REJECT", "OK") for c in window),
                            "calls_in_window": len(window),
                            "seconds_to_recover": None if back is None else round(back - began, 2),
                            "false_accepts": _false_accepts(window),
                            "double_redemptions": _double_redemptions(window),
                        }
                        print(f"{fault}: {report['faults'][fault]}", flush=True)
                        time.sleep(seconds)  # steady load again
                finally:
                    stop.set()
                    for worker in workers:
                        worker.join(timeout=60)
                lost = [user for user in run.enrolled if not _still_enrolled(gateway, user)]
        finally:
            stack.stop()
    by_kind = {kind: sum(c.kind == kind for c in run.calls)
               for kind in ("genuine", "impostor", "attack", "again", "enrol")}
    report.update(
        calls=by_kind,
        genuine_accepted=sum(c.kind == "genuine" and c.outcome == "ACCEPT" for c in run.calls),
        failed_by_status=dict(Counter(c.outcome for c in run.calls if c.outcome not in ("ACCEPT", "REJECT", "OK"))),
        false_accepts=_false_accepts(run.calls),
        double_redemptions=_double_redemptions(run.calls),
        acknowledged_enrolments=len(run.enrolled),
        enrolments_lost=len(lost),
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="steady load before, between and after faults")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "faults.json")
    args = parser.parse_args()
    report = run_faults(args.seconds)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
