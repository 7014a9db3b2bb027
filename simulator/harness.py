"""Running the simulator in a background thread on a free port (tests, benchmarks).

with SimulatorThread(SimConfig(token_delay_ms=5)) as sim:
    client = ollama.Client(host=sim.url)
"""

import socket
import threading
import time
from types import TracebackType

import uvicorn

from simulator.config import SimConfig
from simulator.server import create_app, uvicorn_config
from simulator.state import SimState

STARTUP_TIMEOUT = 10.0


class SimulatorThread:
    def __init__(self, config: SimConfig | None = None, host: str = "127.0.0.1") -> None:
        self.app = create_app(config or SimConfig())
        self.host = host
        self.port = 0
        self._server = uvicorn.Server(uvicorn_config(self.app, host))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state(self) -> SimState:
        """The live state; read it from another thread for assertions only."""
        state: SimState = self.app.state.sim
        return state

    def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="ollama-sim", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Ollama simulator did not start")
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=STARTUP_TIMEOUT)
            self._thread = None

    def __enter__(self) -> "SimulatorThread":
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
