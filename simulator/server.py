"""The Ollama simulator's HTTP surface: Ollama's routes plus `/_sim/*` controls for tests."""

import time

import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from simulator.chat import OllamaJSON, chat
from simulator.config import SimConfig
from simulator.errors import SimError
from simulator.request import parse_object
from simulator.state import SimState
from simulator.threaded import quiet_config


class Api:
    def __init__(self, state: SimState) -> None:
        self.state = state

    async def root(self, request: Request) -> Response:
        return PlainTextResponse("Ollama is running")

    async def version(self, request: Request) -> Response:
        return OllamaJSON({"version": self.state.config.version})

    async def tags(self, request: Request) -> Response:
        return OllamaJSON({"models": [m.tags_entry() for m in self.state.catalog.listed()]})

    async def ps(self, request: Request) -> Response:
        return OllamaJSON({"models": [m.ps_entry() for m in self.state.loaded()]})

    async def show(self, request: Request) -> Response:
        body = parse_object(await request.body(), "api.ShowRequest")
        name = body.get("model") or body.get("name")
        if not name or not isinstance(name, str):
            raise SimError(400, "model is required")
        return OllamaJSON(self.state.catalog.get(name).show_entry())

    async def chat(self, request: Request) -> Response:
        started = time.perf_counter_ns()
        return chat(self.state, await request.body(), started)

    async def stats(self, request: Request) -> Response:
        return OllamaJSON(self.state.stats.as_dict())

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return OllamaJSON(self.state.stats.as_dict())

    async def config(self, request: Request) -> Response:
        if request.method == "POST":
            changes = parse_object(await request.body(), "SimConfig")
            try:
                self.state.update_config(changes)
            except ValidationError as exc:
                raise SimError(400, str(exc)) from None
        return OllamaJSON(self.state.config.model_dump())


async def sim_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SimError)
    return OllamaJSON(exc.body(), status_code=exc.status)


async def no_route(request: Request, exc: Exception) -> Response:
    # gin answers unknown routes and wrong methods alike.
    return PlainTextResponse("404 page not found", status_code=404)


def create_app(config: SimConfig) -> Starlette:
    api = Api(SimState(config))
    routes = [
        Route("/", api.root, methods=["GET", "HEAD"]),
        Route("/api/version", api.version, methods=["GET", "HEAD"]),
        Route("/api/tags", api.tags, methods=["GET", "HEAD"]),
        Route("/api/ps", api.ps, methods=["GET"]),
        Route("/api/show", api.show, methods=["POST"]),
        Route("/api/chat", api.chat, methods=["POST"]),
        Route("/_sim/stats", api.stats, methods=["GET"]),
        Route("/_sim/reset", api.reset, methods=["POST"]),
        Route("/_sim/config", api.config, methods=["GET", "POST"]),
    ]
    handlers = {SimError: sim_error, HTTPException: no_route}
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.sim = api.state
    return app


def serve(config: SimConfig, host: str, port: int) -> None:
    uvicorn.Server(quiet_config(create_app(config), host, port)).run()
