"""Settings: read once, bad values stop with a clear message, all documented."""

from pathlib import Path

import pytest

from hwotp import config


def test_defaults_and_overrides():
    settings = config.load({"HWOTP_CHALLENGE_LENGTH": "8", "HWOTP_GRACE_S": "2.5"})
    assert settings.challenge_length == 8 and settings.grace_s == 2.5
    assert config.load({}).gateway_port == 50051


def test_booleans_are_parsed_not_truthy():
    assert config.load({"HWOTP_STORE_ENROLMENT_IMAGES": "false"}).store_enrolment_images is False
    assert config.load({"HWOTP_STORE_ENROLMENT_IMAGES": "on"}).store_enrolment_images is True
    with pytest.raises(config.ConfigError):
        config.load({"HWOTP_STORE_ENROLMENT_IMAGES": "maybe"})


@pytest.mark.parametrize("env,message", [
    ({"HWOTP_CHALLENGE_LENGTH": "3"}, "between 4 and 10"),
    ({"HWOTP_GATEWAY_PORT": "http"}, "not a valid int"),
    ({"HWOTP_WRITER_POLICY": "majority"}, "all_pass or fused_mean"),
])
def test_bad_values_are_refused(env, message):
    with pytest.raises(config.ConfigError, match=message):
        config.load(env)


def test_every_setting_is_in_the_readme():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for line in config.markdown_table().splitlines()[2:]:
        name = line.split("`")[1]
        assert f"`{name}`" in readme, f"{name} is not documented in README.md"
