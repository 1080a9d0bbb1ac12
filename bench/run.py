"""make bench: model-only bound versus end-to-end throughput, on this machine, in one run.

python -m bench.run [--ink strokes|scans] [--seconds 20] [--out bench/result.json]

1. model only: recognizer + verifier ONNX inference for the digits of one
   authentication (a batch of `length` digits per model, as the services run
   them; for strokes the online verifier's and online recognizer's too), in-process, one worker thread
   per core: authentications/s of pure model compute;
2. end to end: redis-server and the four services on loopback, virtual users
   logging in (BeginChallenge + SubmitChallenge) at fixed concurrencies, writing
   as touchscreens do (strokes, the default) or sending scanned images; the
   best is the maximum throughput;
3. open-loop arrivals at half that rate: p50 / p99 latency of a login;
4. the CPU of one bare RPC, the floor every hop pays, and the CPU a login costs
   outside model inference (all processes' CPU per login minus the model-only
   cost per authentication).
Writes bench/result.json and BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.loadgen import LOAD_TEST_ENV, RPCS, Handwriting, LoadGenerator
from hwotp.config import ChallengeSettings
from hwotp.models import ModelBundle
from hwotp.trajectory import CHANNELS, POINTS
from local.stack import Stack
from training import data

REPO = Path(__file__).resolve().parent.parent
CONCURRENCIES = (4, 8, 16)
HALF_LOAD_RUNS = 3  # the open-loop run at half load lasts this many sweep runs


def model_only(length: int, seconds: float, workers: int, online: bool) -> float:
    bundle = ModelBundle.load()
    embedder, _, _ = bundle.verifier()
    rng = np.random.default_rng(0)
    batch = rng.random((length, 1, 28, 28), dtype=np.float32)
    models = [(bundle.recognizer, batch), (embedder, batch)]
    if online:
        paths = rng.random((length, CHANNELS, POINTS), dtype=np.float32)
        models.append((bundle.online_verifier, paths))
        if bundle.has_online_recognizer:
            models.append((bundle.online_recognizer, paths))
    for model, inputs in models:  # warm up
        model(inputs)
    done = [0] * workers
    stop = time.monotonic() + seconds

    def work(slot: int) -> None:
        while time.monotonic() < stop:
            for model, inputs in models:
                model(inputs)
            done[slot] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - started)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def hop_cpu_ms(address: str, server_pid: int, calls: int = 2000, threads: int = 4) -> float:
    """CPU (client + server) of one bare unary RPC, a health check through the service
    bootstrap: the floor every hop of a login pays, whatever it carries."""
    with grpc.insecure_channel(address) as channel:
        check = health_pb2_grpc.HealthStub(channel).Check
        check(health_pb2.HealthCheckRequest())

        def work() -> None:
            for _ in range(calls // threads):
                check(health_pb2.HealthCheckRequest())

        before = cpu_seconds(server_pid) + cpu_seconds(os.getpid())
        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return 1000 * (cpu_seconds(server_pid) + cpu_seconds(os.getpid()) - before) / calls


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _p50_p99(latency: dict) -> dict:
    return {q: round(latency[q], 2) for q in ("p50_ms", "p99_ms")}


def run(seconds: float, users: int, ink: str) -> dict:
    cores = os.cpu_count() or 1
    length = ChallengeSettings().challenge_length
    bundle = ModelBundle.load()
    online = ink == "strokes" and bundle.has_online
    print(f"model only: {length} digits per authentication{' (with the online models)' if online else ''}, "
          f"{cores} worker threads, {seconds:.0f} s", flush=True)
    bound = model_only(length, seconds, cores, online)
    print(f"  {bound:.1f} authentications/s", flush=True)
    handwriting = Handwriting(users, ink=ink)
    with tempfile.TemporaryDirectory() as workdir:
        stack = Stack(Path(workdir), env=LOAD_TEST_ENV).start()
        try:
            generator = LoadGenerator(stack.gateway, stack.api_key, handwriting, users, impostors=0.2)
            asyncio.run(generator.run(1, None, None, count=users))  # enrol every user, warm up
            sweeps, cpu_split = {}, {}
            pids = {name: service.process.pid for name, service in stack.services.items()}
            pids |= {"redis": stack.redis.process.pid, "load generator": os.getpid()}
            for concurrency in CONCURRENCIES:
                before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                result = asyncio.run(generator.run(concurrency, None, seconds, None, enrol=False))
                sweeps[concurrency] = result
                cpu_split[concurrency] = {name: round(1000 * (cpu_seconds(pid) - before[name]) / max(result["logins"], 1), 2)
                                          for name, pid in pids.items()}
                print(f"end to end, concurrency {concurrency}: {result['auth_per_s']:.1f}/s, "
                      f"p50 {result['latency']['login']['p50_ms']:.1f} ms, p99 {result['latency']['login']['p99_ms']:.1f} ms, "
                      f"errors {result['errors']}", flush=True)
            best = max(sweeps, key=lambda c: sweeps[c]["auth_per_s"])
            e2e = sweeps[best]["auth_per_s"]
            # three times as long: a p99 wants enough slow logins to stand on
            half = asyncio.run(generator.run(None, e2e / 2, HALF_LOAD_RUNS * seconds, None, enrol=False))
            print(f"open loop at {e2e / 2:.1f}/s: p50 {half['latency']['login']['p50_ms']:.1f} ms, "
                  f"p99 {half['latency']['login']['p99_ms']:.1f} ms, errors {half['errors']}", flush=True)
            hop = hop_cpu_ms(stack.services["recognizer"].address, pids["recognizer"])
            print(f"one bare RPC (client + server): {hop:.2f} ms CPU", flush=True)
        finally:
            stack.stop()
    login_cpu_ms = sum(cpu_split[best].values())
    return {
        "machine": {"cores": cores, "cpu": cpu_model(), "python": platform.python_version()},
        "ink": ink,
        "online_verifier": online,
        "online_recognizer": online and bundle.has_online_recognizer,
        "challenge_length": length,
        "model_only_auth_per_s": round(bound, 2),
        "e2e_auth_per_s": round(e2e, 2),
        "e2e_best_concurrency": best,
        "ratio": round(e2e / bound, 3),
        "p50_ms_at_half": round(half["latency"]["login"]["p50_ms"], 2),
        "p99_ms_at_half": round(half["latency"]["login"]["p99_ms"], 2),
        # a login is both calls back to back; in use a person writes the digits between them
        "per_call_ms_at_half": {rpc: _p50_p99(half["latency"][rpc]) for rpc in RPCS},
        # counted in the login: how late the generator sent a login after its scheduled arrival
        "late_ms_at_half": _p50_p99(half["latency"]["late"]),
        "p50_ms_at_max": round(sweeps[best]["latency"]["login"]["p50_ms"], 2),
        "p99_ms_at_max": round(sweeps[best]["latency"]["login"]["p99_ms"], 2),
        "errors": sum(r["errors"] for r in sweeps.values()) + half["errors"],
        "sweep": {str(c): {"auth_per_s": round(r["auth_per_s"], 2), "p99_ms": round(r["latency"]["login"]["p99_ms"], 2)}
                  for c, r in sweeps.items()},
        "cpu_ms_per_login_at_max": cpu_split[best],
        # what a login costs besides model inference: serialisation, decoding, Redis, scheduling
        "cpu_ms_per_login_outside_models": round(login_cpu_ms - 1000 * cores / bound, 2),
        "bare_rpc_cpu_ms": round(hop, 3),
        "service_cpus": stack.describe()["cpus"],
        "seconds_per_run": seconds,
        "users": users,
    }


def write_markdown(result: dict, command: str, path: Path) -> None:
    machine = result["machine"]
    sweep = "\n".join(f"| {c} | {v['auth_per_s']} | {v['p99_ms']} |" for c, v in result["sweep"].items())
    split = "\n".join(f"| {name} | {ms} |" for name, ms in result["cpu_ms_per_login_at_max"].items())
    login_cpu_ms = sum(result["cpu_ms_per_login_at_max"].values())
    ceiling = 1000 * machine["cores"] / login_cpu_ms
    notes = (Path(__file__).parent / "changes.md").read_text()
    dealt = ", ".join(f"{name} {cpus}" for name, cpus in result["service_cpus"].items())
    placement = (f"each service's threads stay on the CPUs the local stack gave it ({dealt})" if dealt
                 else "the services run on the CPUs HWOTP_CPUS in the environment gives them")
    per_call = "; ".join(f"{rpc} {v['p50_ms']} / {v['p99_ms']} ms" for rpc, v in result["per_call_ms_at_half"].items())
    late = result["late_ms_at_half"]
    path.write_text(f"""# hwotp benchmarks

Written by `{command}` (also in `bench/result.json`). Machine: {machine['cores']} cores,
{machine['cpu']}, Python {machine['python']}. Everything — redis-server, the four
services and the load generator — runs on this one machine, sharing its cores;
{placement}.

| figure | value |
|---|---|
| model only: recognizer + verifier{' + online verifier' if result['online_verifier'] else ''}{' + online recognizer' if result.get('online_recognizer') else ''} inference for one {result['challenge_length']}-digit authentication, in-process, {machine['cores']} threads | {result['model_only_auth_per_s']} auth/s |
| end to end: BeginChallenge + SubmitChallenge through the gateway, boxes written as {result['ink']}, best concurrency ({result['e2e_best_concurrency']}) | {result['e2e_auth_per_s']} auth/s |
| CPU a login costs outside model inference (all processes' CPU per login at the maximum minus the model-only CPU per authentication) | {result['cpu_ms_per_login_outside_models']} ms |
| ratio end to end / model only | {result['ratio']} |
| login latency at half the maximum rate (open loop, {HALF_LOAD_RUNS * result['seconds_per_run']:.0f} s, the same arrival times every run; from each login's scheduled arrival), p50 / p99 | {result['p50_ms_at_half']} / {result['p99_ms_at_half']} ms |
| the same run per call, p50 / p99 (a login is both calls back to back; in use a person writes the digits between them) | {per_call} |
| the same run: how late the load generator, sharing the cores, sent a login after its scheduled arrival (counted in the login), p50 / p99 | {late['p50_ms']} / {late['p99_ms']} ms |
| login latency at the maximum, p50 / p99 | {result['p50_ms_at_max']} / {result['p99_ms_at_max']} ms |
| errors (non-OK status codes) | {result['errors']} |

Concurrency sweep ({result['seconds_per_run']:.0f} s each, {result['users']} virtual users, 20% impostor logins):

| concurrency | auth/s | p99 ms |
|---|---|---|
{sweep}

CPU per login at the maximum, by process (ms; {machine['cores']} cores give {1000 * machine['cores']:.0f} ms per second;
the model-only bound spends {1000 * machine['cores'] / result['model_only_auth_per_s']:.1f} ms per authentication):

| process | CPU ms per login |
|---|---|
{split}

All of them together spend {login_cpu_ms:.1f} ms per login. Even with every core busy all
the time that allows {ceiling:.0f} logins/s, a ratio of {ceiling / result['model_only_auth_per_s']:.2f}: the ratio can
rise only as far as this CPU per login falls.

One bare RPC (a health check through the service bootstrap) costs
{result['bare_rpc_cpu_ms']} ms of CPU, client and server together; a login makes up to
nine: BeginChallenge (GetEnrollment, Create) and SubmitChallenge (Claim,
Recognize, Verify and, when accepted, RecordSuccess and RememberAccepted).

{notes}""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ink", choices=("strokes", "scans"), default="strokes",
                        help="how the virtual users write: touchscreen strokes (default) or scanned images")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "result.json")
    parser.add_argument("--markdown", type=Path, default=REPO / "BENCHMARKS.md")
    args = parser.parse_args()
    data.exit_if_missing()  # before the model-only run, not after it
    result = run(args.seconds, args.users, args.ink)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    write_markdown(result, "make bench", args.markdown)
    print(json.dumps({k: result[k] for k in ("model_only_auth_per_s", "e2e_auth_per_s", "ratio",
                                             "cpu_ms_per_login_outside_models", "p50_ms_at_half", "p99_ms_at_half",
                                             "errors")}, indent=1))


if __name__ == "__main__":
    main()
