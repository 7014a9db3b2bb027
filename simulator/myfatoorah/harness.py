"""Running the MyFatoorah double in a background thread on a free port (tests, e2e).

with MyFatoorahDouble(MyFatoorahConfig(webhook_url=receiver.url)) as mf:
    httpx.post(f"{mf.url}/v2/ExecutePayment", headers=mf.headers, json={...})
"""

import socket
import threading
import time
from types import TracebackType

import uvicorn

from simulator.myfatoorah.config import MyFatoorahConfig
from simulator.myfatoorah.server import app_state, create_app, uvicorn_config
from simulator.myfatoorah.state import MyFatoorahState

STARTUP_TIMEOUT = 10.0


class MyFatoorahDouble:
    def __init__(self, config: MyFatoorahConfig | None = None, host: str = "127.0.0.1") -> None:
        self.app = create_app(config or MyFatoorahConfig())
        self.host = host
        self.port = 0
        self._server = uvicorn.Server(uvicorn_config(self.app, host))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state(self) -> MyFatoorahState:
        """The live state; every method of it is safe to call from the test's thread."""
        return app_state(self.app)

    @property
    def headers(self) -> dict[str, str]:
        """What a merchant sends with every `/v2` call."""
        return {"Authorization": f"Bearer {self.state.config.token}"}

    def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        self.state.server_url = self.url
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="myfatoorah", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the MyFatoorah double did not start")
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=STARTUP_TIMEOUT)
            self._thread = None
        self.state.webhooks.stop()

    def __enter__(self) -> "MyFatoorahDouble":
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
