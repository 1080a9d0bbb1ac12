"""Settings: read once, each by the service that owns it, bad values stop with a clear message, all documented."""

from dataclasses import fields
from pathlib import Path

import pytest

from hwotp import config


def test_defaults_and_overrides():
    settings = config.load(config.ChallengeSettings, {"HWOTP_CHALLENGE_LENGTH": "8", "HWOTP_GRACE_S": "2.5"})
    assert settings.challenge_length == 8 and settings.grace_s == 2.5
    assert config.load(config.GatewaySettings, {"HWOTP_SUBJECT_KEY": "k"}).gateway_port == 50051


def test_each_service_reads_only_its_own_and_the_shared_settings():
    verifier = {f.name for f in fields(config.VerifierSettings)}
    assert "template_keys" in verifier and "redis_url" in verifier and "host" in verifier
    assert not verifier & {"api_keys", "subject_key", "challenge_length", "gateway_port"}
    assert not {f.name for f in fields(config.GatewaySettings)} & {"template_keys", "redis_url", "models_dir"}
    assert not {f.name for f in fields(config.RecognizerSettings)} & {"redis_url", "template_keys", "api_keys"}


def test_booleans_are_parsed_not_truthy():
    load = lambda raw: config.load(config.VerifierSettings, {"HWOTP_STORE_ENROLMENT_IMAGES": raw})  # noqa: E731
    assert load("false").store_enrolment_images is False
    assert load("on").store_enrolment_images is True
    with pytest.raises(config.ConfigError):
        load("maybe")


@pytest.mark.parametrize("kind,env,message", [
    (config.ChallengeSettings, {"HWOTP_CHALLENGE_LENGTH": "3"}, "between 4 and 10"),
    (config.GatewaySettings, {"HWOTP_GATEWAY_PORT": "http"}, "not a valid int"),
    (config.VerifierSettings, {"HWOTP_WRITER_POLICY": "majority"}, "all_pass or fused_mean"),
    (config.GatewaySettings, {}, "HWOTP_SUBJECT_KEY is required"),
])
def test_bad_values_are_refused(kind, env, message):
    with pytest.raises(config.ConfigError, match=message):
        config.load(kind, env)


def test_every_setting_is_in_the_readme_once():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = config.markdown_table().splitlines()[2:]
    names = [line.split("`")[1] for line in table]
    assert len(names) == len(set(names))
    for name in names:
        assert f"`{name}`" in readme, f"{name} is not documented in README.md"
