"""A short path for a template's JSON prediction routes, inside BentoML's own server.

BentoML answers each request through Starlette's router, its request wrapper, a span per request
and an access-log line: about 0.6 ms of one core, several times what a compiled tree ensemble
costs. :class:`ShortPath` answers ``POST`` with a JSON body on an API's route itself, with the
same input model (pydantic-core parses the body), the same method and the same output model, so
an answer is byte for byte what BentoML would send. It sits inside BentoML's metrics, timeout
and concurrency middlewares, which still count and bound every request. Whatever it does not
answer, or cannot (a body that does not validate, a refused row, a failed model), goes on to
BentoML unchanged, with the body replayed: errors are BentoML's, word for word.

This module imports nothing of BentoMesh: it runs inside bentos.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

JSON = b"application/json"


@dataclass(frozen=True)
class _Route:
    func: Any  # the method as written (BentoML's wrapper adds nothing on this path)
    input_spec: Any
    output_spec: Any
    root_output: bool


def _short(api: Any) -> _Route | None:
    """The route of an API the short path can answer exactly as BentoML would, if any: an async
    method of JSON in and JSON out, no context, stream, batching or files."""
    from _bentoml_sdk.io_models import IORootModel  # type: ignore[import-untyped]

    input_spec, output_spec = api.input_spec, api.output_spec
    if (
        api.batchable
        or api.is_stream
        or api.ctx_param is not None
        or not inspect.iscoroutinefunction(api.func)
        or getattr(input_spec, "__root_input__", False)
        or input_spec.multipart_fields
        or getattr(output_spec, "multipart_fields", None)
        or output_spec.mime_type() != JSON.decode()
    ):
        return None
    return _Route(api.func, input_spec, output_spec, issubclass(output_spec, IORootModel))


class Routes:
    """The APIs a service's short path answers, and the instance that answers them (bound once
    BentoML has made it, in the service's ``__init__``)."""

    def __init__(self) -> None:
        self.by_path: dict[str, _Route] = {}
        self.instance: Any = None

    def learn(self, service: Any) -> None:
        for api in service.apis.values():
            route = _short(api)
            if route is not None:
                self.by_path[api.route] = route

    def bind(self, instance: Any) -> None:
        self.instance = instance

    async def answer(self, route: _Route, body: bytes) -> bytes:
        """The JSON answer to ``body``; raises what BentoML would turn into an error."""
        data = route.input_spec.model_validate_json(body)
        kwargs = {key: getattr(data, key) for key in type(data).model_fields}
        output = await route.func(self.instance, **kwargs)
        if route.root_output:
            output = output if isinstance(output, route.output_spec) else route.output_spec(output)
        encoded: bytes = output.model_dump_json().encode()
        return encoded


class ShortPath:
    """ASGI middleware: the short path for ``routes``, BentoML's path for everything else."""

    def __init__(self, app: Any, routes: Routes, server: str) -> None:
        self.app = app
        self.routes = routes
        self.headers = [(b"content-type", JSON), (b"server", f"BentoML Service/{server}".encode())]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        route = self.routes.by_path.get(scope.get("path", "")) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST" or self.routes.instance is None:
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-type" and value.split(b";")[0].strip() != JSON:
                await self.app(scope, receive, send)
                return
        body, messages = b"", []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":  # the client left: BentoML sees it too
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            answer = await self.routes.answer(route, body)
        except Exception:  # BentoML answers it, as it would have
            await self.app(scope, _replay(messages, receive), send)
            return
        headers = [*self.headers, (b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


def _replay(messages: list[dict[str, Any]], receive: Any) -> Any:
    """``receive`` that gives the messages already read, then the client's next ones."""
    pending = list(messages)

    async def replayed() -> Any:
        return pending.pop(0) if pending else await receive()

    return replayed


def expose(service: Any, routes: Routes) -> None:
    """Put :class:`ShortPath` in front of a ``@bentoml.service``'s JSON APIs."""
    routes.learn(service)
    service.add_asgi_middleware(ShortPath, routes=routes, server=service.name)
