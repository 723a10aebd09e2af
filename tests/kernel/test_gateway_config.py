"""Which gateway and token (settings, flags, jupyter_server's variables), and that neither the token nor
a URL's credentials reach a message, a repr or a settings problem."""

from __future__ import annotations

from lsp_server.kernel.gateway_config import GatewayConfig
from lsp_server.settings import parse_settings


def test_settings_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("JUPYTER_GATEWAY_URL", "http://env-host:8888")
    monkeypatch.setenv("JUPYTER_GATEWAY_AUTH_TOKEN", "env-token")
    assert GatewayConfig.resolve("https://gpu:8888/", "set-token") == GatewayConfig("https://gpu:8888", "set-token")
    assert GatewayConfig.resolve("https://gpu:8888", None).token == "env-token"
    assert GatewayConfig.resolve(None, None) == GatewayConfig("http://env-host:8888", "env-token")
    monkeypatch.delenv("JUPYTER_GATEWAY_URL")
    assert GatewayConfig.resolve("", "set-token") is None


def test_a_token_in_the_url_becomes_the_token_and_leaves_the_url(monkeypatch):
    monkeypatch.delenv("JUPYTER_GATEWAY_AUTH_TOKEN", raising=False)
    config = GatewayConfig.resolve("https://gpu:8888/lab/?token=abc123&x=1", None)
    assert (config.url, config.token) == ("https://gpu:8888/lab?x=1", "abc123")


def test_the_token_and_credentials_are_never_shown():
    config = GatewayConfig("https://alice:pw@gpu:8888/base?x=1", "s3cret-token")
    assert config.shown_url == "https://gpu:8888/base" and config.where == "the Jupyter gateway at https://gpu:8888/base"
    for text in (repr(config), str(config), config.redact(f"GET {config.url} with token s3cret-token failed")):
        assert "s3cret-token" not in text and "pw" not in text, text
    assert config.redact("token s3cret-token") == "token ***"


def test_a_bad_token_setting_is_reported_without_its_value():
    settings, problems = parse_settings({"kernel": {"gateway": {"url": "https://gpu:8888", "token": 987654321}}})
    assert settings.kernel.gateway.url == "https://gpu:8888" and settings.kernel.gateway.token is None
    assert len(problems) == 1 and "tlens.kernel.gateway.token" in problems[0] and "987654321" not in problems[0]
    good, _ = parse_settings({"kernel": {"gateway": {"token": "s3cret-token"}}})
    assert good.kernel.gateway.token == "s3cret-token" and "s3cret-token" not in repr(good)
