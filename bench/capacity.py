"""Bytes Redis keeps per user, measured on a real stack: python -m bench.capacity [--users 12] [--logins 10]

Enrols users with held-out UNIPEN writers' strokes (three samples per digit,
as touchscreens send them), logs each in `--logins` times, then asks Redis
(MEMORY USAGE) what every key of each user costs, by kind. Prints bytes per
enrolled user and per accepted login kept in the replay history, and a
capacity table: memory, Redis primaries and service replicas for 1M, 10M and
100M users at the stated login rate, from the per-replica throughput in
bench/result.json (`make bench`).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import tempfile
from collections import defaultdict
from pathlib import Path

from bench.loadgen import LOAD_TEST_ENV, Handwriting
from hwotp.client import gateway_channel, gateway_stub
from hwotp.v1 import gateway_pb2
from local.stack import Stack

REPO = Path(__file__).resolve().parent.parent
LOGINS_PER_USER_PER_DAY = 2
HISTORY_DAYS = 90  # HWOTP_REPLAY_HISTORY_DAYS
PEAK_FACTOR = 10  # the busiest second against the day's mean
PRIMARY_MEMORY_GB = 25  # usable per Redis primary (a 32 GB node with headroom for AOF rewrites)
USERS = (1_000_000, 10_000_000, 100_000_000)


def measure(users: int, logins: int) -> dict:
    handwriting = Handwriting(users, ink="strokes")
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as workdir:
        stack = Stack(Path(workdir), env=LOAD_TEST_ENV).start()
        try:
            with gateway_channel(stack.gateway, stack.api_key) as channel:
                gateway = gateway_stub(channel)
                names = [f"capacity-{i}" for i in range(len(handwriting.writers))]
                for index, name in enumerate(names):
                    gateway.Enroll(handwriting.enrolment(index, name), timeout=60)
                enrolled = _bytes_by_kind(stack)
                accepted = 0
                for index, name in enumerate(names):
                    for _ in range(logins):
                        challenge = gateway.BeginChallenge(gateway_pb2.BeginChallengeRequest(user_id=name), timeout=30)
                        answer = gateway.SubmitChallenge(gateway_pb2.SubmitChallengeRequest(
                            challenge_id=challenge.challenge_id, user_id=name,
                            boxes=handwriting.write(index, challenge.digits, rng)), timeout=30)
                        accepted += answer.decision == gateway_pb2.ACCEPT
                after = _bytes_by_kind(stack)
        finally:
            stack.stop()
    count = len(names)
    history = after.get("fpa", 0) / max(accepted, 1)
    return {"users": count, "logins": count * logins, "accepted": accepted,
            "enrolment_bytes_per_user": {k: round(v / count) for k, v in sorted(enrolled.items())},
            "enrolment_bytes": round(sum(enrolled.values()) / count),
            "after_logins_bytes_per_user": {k: round(v / count) for k, v in sorted(after.items())},
            "history_bytes_per_accepted_login": round(history)}


def _bytes_by_kind(stack: Stack) -> dict[str, int]:
    client = stack.redis.client()
    out: dict[str, int] = defaultdict(int)
    for key in client.scan_iter(match="hwotp:{*", count=1000):
        kind = key.decode().split("}:", 1)[1].split(":", 1)[0]  # hwotp:{tag}:kind[:id]
        out[kind] += client.memory_usage(key, samples=0) or 0
    return dict(out)


def table(figures: dict, bench: dict) -> str:
    per_user = figures["enrolment_bytes"] + \
        figures["history_bytes_per_accepted_login"] * LOGINS_PER_USER_PER_DAY * HISTORY_DAYS
    cores = bench["machine"]["cores"]
    per_core = bench["e2e_auth_per_s"] / cores
    rows = []
    for users in USERS:
        memory_gb = users * per_user / 1e9
        primaries = max(1, math.ceil(memory_gb / PRIMARY_MEMORY_GB))
        peak = users * LOGINS_PER_USER_PER_DAY / 86_400 * PEAK_FACTOR
        cores_needed = math.ceil(peak / per_core)
        rows.append(f"| {users:,} | {memory_gb:,.0f} GB | {primaries} primaries + {primaries} replicas | "
                    f"{peak:,.0f} logins/s | {cores_needed} cores ({math.ceil(cores_needed / cores)} "
                    f"{cores}-core stacks of the four services) |")
    return "\n".join([
        f"Per user: {figures['enrolment_bytes']:,} bytes enrolled (three samples per digit, strokes kept), "
        f"{figures['history_bytes_per_accepted_login']:,} bytes per accepted login in the replay history; "
        f"{LOGINS_PER_USER_PER_DAY} logins a day kept {HISTORY_DAYS} days: {per_user:,} bytes. Throughput: "
        f"{bench['e2e_auth_per_s']} logins/s on {cores} cores (`make bench`, {bench.get('ink', 'scans')}); "
        f"peak {PEAK_FACTOR}x the mean; {PRIMARY_MEMORY_GB} GB per primary.",
        "",
        "| users | Redis memory (primaries) | Redis nodes | peak login rate | service CPU |",
        "|---|---|---|---|---|",
        *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument("--logins", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "capacity.json")
    args = parser.parse_args()
    figures = measure(args.users, args.logins)
    args.out.write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps(figures, indent=1))
    print(table(figures, json.loads((REPO / "bench" / "result.json").read_text())))


if __name__ == "__main__":
    main()
