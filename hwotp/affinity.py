"""Keeping a service's threads on given CPUs (HWOTP_CPUS).

Every call a service serves hands work between threads (gRPC's poller, the
worker pool, client calls). On the two-CPU virtual machine this was measured
on, two Python threads waking each other take 9-13 µs per round trip on one
CPU and 90 µs (74 µs of it CPU) across the two; with each service held to one
CPU, the local stack served about 20% more logins per second (BENCHMARKS.md).
"""

from __future__ import annotations

import os
import re

_RANGE = re.compile(r"(\d+)(?:-(\d+))?")


def parse_cpus(text: str) -> frozenset[int]:
    """'0', '0-3', '0,2,5-7' -> their CPU numbers; '' -> none (no pinning)."""
    cpus: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _RANGE.fullmatch(part)
        if not match or int(match[2] or match[1]) < int(match[1]):
            raise ValueError(f"{part!r} is not a CPU number or a range like 0-3")
        cpus.update(range(int(match[1]), int(match[2] or match[1]) + 1))
    return frozenset(cpus)


def pin_process(cpus: frozenset[int]) -> None:
    """Hold every thread of this process, and so every thread it starts later, to `cpus`
    (all of them usable: ServiceSettings.validate checks)."""
    if not cpus:
        return
    for thread_id in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(thread_id), cpus)
        except ProcessLookupError:
            pass  # the thread ended meanwhile


def spread(names: list[str], cpus: list[int]) -> dict[str, frozenset[int]]:
    """Deal `cpus` round robin over `names`; with fewer CPUs than names, names share them
    in the same rotation (the first and the third on one CPU when there are two)."""
    if not cpus:
        return {}
    dealt: dict[str, set[int]] = {name: set() for name in names}
    for index, cpu in enumerate(cpus):
        dealt[names[index % len(names)]].add(cpu)
    for index, name in enumerate(names):
        if not dealt[name]:
            dealt[name].add(cpus[index % len(cpus)])
    return {name: frozenset(chosen) for name, chosen in dealt.items()}


def cpu_list(cpus: frozenset[int]) -> str:
    return ",".join(str(cpu) for cpu in sorted(cpus))
