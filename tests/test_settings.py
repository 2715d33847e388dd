"""The service's settings: defaults < TOML file < environment < command line / properties."""

from __future__ import annotations

import pytest

from bcdi_online import ConfigurationError, ServiceSettings
from bcdi_online.cli._main import build_parser
from bcdi_online.cli._options import service_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("TILED_URI", "TILED_API_KEY_FILE", "BCDI_ONLINE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for name in list(__import__("os").environ):
        if name.startswith("BCDI_ONLINE_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = ServiceSettings.load()
    assert settings.tiled_uri == "http://localhost:8000" and settings.zmq_out == "localhost:5578"
    assert settings.grace == 60.0 and settings.allow_pickle is False and settings.device is None


def test_file_then_environment_then_overrides(tmp_path, monkeypatch) -> None:
    config = tmp_path / "bcdi.toml"
    config.write_text('tiled_uri = "http://file:1"\ngrace = 5\nzmq_out = "file:5578"\n')
    settings = ServiceSettings.load(config)
    assert (settings.tiled_uri, settings.grace, settings.zmq_out) == (
        "http://file:1",
        5.0,
        "file:5578",
    )
    monkeypatch.setenv("TILED_URI", "http://tiled-client:2")  # the Tiled client's variable
    assert ServiceSettings.load(config).tiled_uri == "http://tiled-client:2"
    monkeypatch.setenv("BCDI_ONLINE_TILED_URI", "http://ours:3")  # ours wins over it
    monkeypatch.setenv("BCDI_ONLINE_GRACE", "7")
    settings = ServiceSettings.load(config, grace=None, zmq_out="cli:1")  # None: not given
    assert (settings.tiled_uri, settings.grace, settings.zmq_out) == (
        "http://ours:3",
        7.0,
        "cli:1",
    )
    monkeypatch.setenv("BCDI_ONLINE_CONFIG", str(config))
    monkeypatch.delenv("BCDI_ONLINE_GRACE")
    assert ServiceSettings.load().grace == 5.0  # the file named by the environment


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("grace = -1\n", {}, "bad settings .*grace: Input should be greater than or equal"),
        ("nope = 1\n", {}, "nope: Extra inputs are not permitted"),
        ("= broken\n", {}, "cannot read settings file"),
        ("", {"device": "gpu"}, "device: String should match pattern"),
        ('queue = "http://redis:6379"\n', {}, "queue: String should match pattern"),
        ("", {"takeover_after": 0}, "takeover_after: Input should be greater than 0"),
    ],
)
def test_bad_settings_are_one_line_configuration_errors(
    tmp_path, text, overrides, message
) -> None:
    config = tmp_path / "bcdi.toml"
    config.write_text(text)
    with pytest.raises(ConfigurationError, match=message) as info:
        ServiceSettings.load(config, **overrides)
    assert "\n" not in str(info.value)


def test_a_missing_file_is_named() -> None:
    with pytest.raises(ConfigurationError, match="settings file '/nowhere.toml' does not exist"):
        ServiceSettings.load("/nowhere.toml")


def test_serve_options_override_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("BCDI_ONLINE_ZMQ_OUT", "env:5578")
    monkeypatch.setenv("BCDI_ONLINE_NAME", "from-env")
    monkeypatch.setenv("TILED_API_KEY_FILE", str(tmp_path / "key"))
    parser = build_parser("serve")
    settings = service_settings(parser.parse_args(["serve", "--grace", "3"]))
    assert settings.zmq_out == "env:5578" and settings.name == "from-env"
    assert settings.grace == 3.0 and settings.api_key_file == tmp_path / "key"
    settings = service_settings(parser.parse_args(["serve", "--zmq", "cli:1", "--allow-pickle"]))
    assert settings.zmq_out == "cli:1" and settings.allow_pickle is True


def test_the_run_queue_options(monkeypatch) -> None:
    monkeypatch.setenv("BCDI_ONLINE_QUEUE", "redis://env:6379/0")
    monkeypatch.setenv("BCDI_ONLINE_TAKEOVER_AFTER", "12")
    parser = build_parser("serve")
    settings = service_settings(parser.parse_args(["serve", "--max-runs", "2"]))
    assert (settings.queue, settings.takeover_after, settings.max_runs) == (
        "redis://env:6379/0", 12.0, 2,
    )  # fmt: skip
    assert settings.queue_stream == "bcdi_online:runs"
    args = ["serve", "--queue", "rediss://cli:6380/1", "--queue-stream", "facility:runs"]
    settings = service_settings(parser.parse_args(args))
    assert (settings.queue, settings.queue_stream) == ("rediss://cli:6380/1", "facility:runs")
