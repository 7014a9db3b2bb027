"""`resayil sim-myfatoorah`: options over `MYFATOORAH_SIM_*` over defaults, and a real process."""

import json
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from resayil.cli import main
from simulator.myfatoorah import cli
from simulator.myfatoorah.config import MyFatoorahConfig


def run_capturing(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[Any, dict[str, Any]]:
    served: dict[str, Any] = {}

    def fake_serve(config: MyFatoorahConfig, host: str, port: int) -> None:
        served.update(config=config, host=host, port=port)

    monkeypatch.setattr(cli, "serve", fake_serve)
    result = CliRunner().invoke(main, ["sim-myfatoorah", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output), served


def test_options_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYFATOORAH_SIM_TOKEN", "from-env")
    monkeypatch.setenv("MYFATOORAH_SIM_WEBHOOK_SECRET", "env-secret")
    printed, served = run_capturing(
        monkeypatch,
        "--port",
        "9123",
        "--webhook-url",
        "http://127.0.0.1:1/hook",
        "--webhook-version",
        "1",
        "--webhook-secret",
        "cli-secret",
    )
    config = served["config"]
    assert (served["host"], served["port"]) == ("127.0.0.1", 9123)
    assert config.token == "from-env" and config.webhook_secret == "cli-secret"
    assert config.webhook_url == "http://127.0.0.1:1/hook" and config.webhook_version == 1
    assert printed == {
        "simulator": "myfatoorah",
        "url": "http://127.0.0.1:9123",
        "public_url": "http://127.0.0.1:9123",
    }


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    printed, served = run_capturing(monkeypatch, "--public-url", "https://pay.test", "--token", "t")
    config = served["config"]
    assert config.token == "t" and config.public_url == "https://pay.test"
    assert config.webhook_url is None and config.webhook_version == 2
    assert config.webhook_secret == "test-webhook-secret"
    assert printed["public_url"] == "https://pay.test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_command_serves_the_double() -> None:
    port = free_port()
    command = [sys.executable, "-m", "resayil", "sim-myfatoorah", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.post(
                    f"{url}/v2/ExecutePayment",
                    json={"InvoiceValue": 1, "PaymentMethodId": 1},
                    headers={"Authorization": "Bearer test-token"},
                )
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        data = response.json()["Data"]
        assert data["PaymentURL"] == f"{url}/pay/{data['InvoiceId']}"
    finally:
        process.terminate()
        process.communicate(timeout=10)
