"""HWOTP_CPUS: parsing, the refusal of CPUs a process may not use, and how the local stack deals CPUs."""

import os

import pytest

from hwotp import config
from hwotp.affinity import cpu_list, parse_cpus, spread


@pytest.mark.parametrize("text,cpus", [
    ("", set()), ("3", {3}), ("0-3", {0, 1, 2, 3}), ("0,2,5-7", {0, 2, 5, 6, 7}), (" 1 , 1-2 ", {1, 2}),
])
def test_cpu_lists_are_parsed(text, cpus):
    assert parse_cpus(text) == cpus


@pytest.mark.parametrize("text", ["a", "1-", "-1", "3-1", "0:1"])
def test_bad_cpu_lists_are_refused_by_the_settings(text):
    with pytest.raises(config.ConfigError, match="HWOTP_CPUS"):
        config.load(config.ServiceSettings, {"HWOTP_CPUS": text})


def test_cpus_the_process_may_not_use_are_refused():
    usable = os.sched_getaffinity(0)
    assert config.load(config.ServiceSettings, {"HWOTP_CPUS": cpu_list(frozenset(usable))}).cpus
    with pytest.raises(config.ConfigError, match="may not run on"):
        config.load(config.ServiceSettings, {"HWOTP_CPUS": str(max(usable) + 1)})


def test_two_cpus_put_the_recognizer_and_the_verifier_apart():
    dealt = spread(["gateway", "verifier", "recognizer", "challenge"], [0, 1])
    assert dealt == {"gateway": {0}, "verifier": {1}, "recognizer": {0}, "challenge": {1}}


def test_more_cpus_than_services_are_all_dealt_and_one_is_shared_by_all():
    names = ["a", "b", "c"]
    dealt = spread(names, [4, 5, 6, 7, 8])
    assert dealt == {"a": {4, 7}, "b": {5, 8}, "c": {6}}
    assert spread(names, [2]) == {name: {2} for name in names}
    assert spread(names, []) == {}
