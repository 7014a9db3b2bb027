"""`POST /api/chat`, in ChatHandler's order: decode, find the model, check capabilities,
answer load/unload requests, inject failures, then hand a plan to `GenerationResponse`."""

from starlette.responses import JSONResponse, Response

from simulator.catalog import Model
from simulator.directives import PRESTREAM_ERRORS
from simulator.errors import RUNNER_STOPPED, SimError, injected_error
from simulator.generation import build_plan
from simulator.lines import created_at
from simulator.request import ChatCall, parse_chat
from simulator.respond import GenerationResponse
from simulator.state import SimState

HARMONY_FAMILIES = frozenset({"gptoss"})


class OllamaJSON(JSONResponse):
    media_type = "application/json; charset=utf-8"


def check_capabilities(call: ChatCall, model: Model) -> None:
    """Local models only: cloud requests are proxied before these checks."""
    caps, name = model.meta.capabilities, call.model
    if "completion" not in caps:
        raise SimError(400, f'"{name}" does not support chat')
    if call.tools and "tools" not in caps:
        raise SimError(400, f'"{name}" does not support tools')
    if call.think not in (None, False) and "thinking" not in caps:
        raise SimError(400, f'"{name}" does not support thinking')
    if isinstance(call.think, str) and model.meta.family not in HARMONY_FAMILIES:
        raise SimError(400, f'think value "{call.think}" is not supported for this model')


def lifecycle_response(state: SimState, call: ChatCall, model: Model) -> Response:
    """Empty `messages`: load the model, or unload it when `keep_alive` is 0."""
    unload = call.keep_alive_seconds == 0
    if unload:
        state.unload(model)
    else:
        state.load(model, keep_alive=call.keep_alive_seconds, num_ctx=call.options.get("num_ctx"))
    return OllamaJSON(
        {
            "model": call.model,
            "created_at": created_at(),
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "unload" if unload else "load",
        }
    )


def prepare_chat(state: SimState, raw: bytes, started: int) -> Response:
    call = parse_chat(raw)
    model = state.catalog.get(call.model)
    if not model.ref.cloud:
        check_capabilities(call, model)
    if not call.messages:
        return lifecycle_response(state, call, model)
    error = call.directives.error
    if error in PRESTREAM_ERRORS:
        raise injected_error(str(error), call.model)
    if state.should_fail():
        raise SimError(500, RUNNER_STOPPED)
    plan = build_plan(call, state.config.tokens)
    return GenerationResponse(state=state, call=call, model=model, plan=plan, started=started)


def chat(state: SimState, raw: bytes, started: int) -> Response:
    state.stats.requests += 1
    try:
        return prepare_chat(state, raw, started)
    except SimError:
        state.stats.errors += 1
        raise
