"""Ollama's error bodies: always `{"error": "<text>"}`, cloud 401s add `signin_url`."""

from typing import Any

SERVER_BUSY = "server busy, please try again.  maximum pending requests exceeded"
RUNNER_STOPPED = (
    "model runner has unexpectedly stopped, this may be due to resource limitations "
    "or an internal error, check ollama server logs for details"
)
SIGNIN_URL = "https://ollama.com/connect?name=sim&key=abc"


class SimError(Exception):
    """An error answered before any output, mapped to JSON in one place (`server.py`)."""

    def __init__(self, status: int, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.message, **self.extra}


def model_not_found(name: str) -> SimError:
    return SimError(404, f"model '{name}' not found")


def injected_error(code: str, model: str) -> SimError:
    """The pre-stream error asked for by `[[sim:error=<code>]]`."""
    match code:
        case "400":
            return SimError(400, "invalid request (injected by simulator)")
        case "401":
            return SimError(401, "unauthorized", signin_url=SIGNIN_URL)
        case "403":
            return SimError(403, "ollama cloud is disabled: remote model is unavailable")
        case "404":
            return model_not_found(model)
        case "429":
            return SimError(
                429, "you've reached your hourly usage limit, please wait or upgrade to continue"
            )
        case "500":
            return SimError(500, RUNNER_STOPPED)
        case "502":
            return SimError(502, "dial tcp: lookup ollama.com: no such host")
        case "503":
            return SimError(503, SERVER_BUSY)
    return SimError(400, f"unknown simulator error directive '{code}'")
