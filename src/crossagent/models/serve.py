"""`crossagent serve`: an OpenAI-compatible chat server over a local model.

    crossagent serve --model PATH [--host 127.0.0.1] [--port 8000]

Endpoints: `GET /v1/models` and `POST /v1/chat/completions` (text and base64 `image_url`
parts; no streaming, n = 1). Concurrent requests are generated in batches. The server has
no authentication, so it binds loopback addresses only.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import threading
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request as HttpRequest
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from transformers import PreTrainedModel
from transformers.processing_utils import ProcessorMixin

from crossagent.models.batching import GenerationQueue
from crossagent.models.generation import GenerationSettings
from crossagent.models.loading import load_model
from crossagent.models.openai_messages import from_openai_messages

DEFAULT_PORT = 8000
DEFAULT_MAX_TOKENS = 256


class ChatCompletionRequest(BaseModel):
    messages: list[dict]
    model: str | None = None
    temperature: float | None = None  # OpenAI's default is 1.0; 0 is greedy
    top_p: float | None = None
    top_k: int | None = None  # vLLM's extension
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    seed: int | None = None
    n: int = 1
    stream: bool = False

    def settings(self) -> GenerationSettings:
        temperature = 1.0 if self.temperature is None else self.temperature
        return GenerationSettings(
            max_new_tokens=self.max_completion_tokens or self.max_tokens or DEFAULT_MAX_TOKENS,
            do_sample=temperature > 0,
            temperature=temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            top_k=self.top_k or 0,
            seed=self.seed,
        )


def openai_error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"message": message, "type": kind, "code": status}})


def create_app(model: PreTrainedModel, processor: ProcessorMixin, model_name: str,
               max_batch_size: int = 16) -> FastAPI:
    generations: dict[str, GenerationQueue] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        generations["queue"] = GenerationQueue(model, processor, max_batch_size)
        yield
        generations.pop("queue").close()

    app = FastAPI(title="crossagent serve", lifespan=lifespan)
    created = int(time.time())

    @app.get("/v1/models")
    async def list_models() -> dict:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": created,
                                            "owned_by": "crossagent"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest):
        if body.model is not None and body.model != model_name:
            return openai_error(404, f"model {body.model!r} is not served here (serving {model_name!r})",
                                "model_not_found")
        if body.stream or body.n != 1:
            return openai_error(400, "streaming and n > 1 are not supported")
        try:
            request = from_openai_messages(body.messages)
            settings = body.settings()
        except ValueError as error:
            return openai_error(400, str(error))
        try:
            completion = await asyncio.wrap_future(generations["queue"].submit(request, settings))
        except Exception as error:  # the client gets the reason; the server keeps serving
            return openai_error(500, f"generation failed: {error}", "server_error")
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": completion.reply},
                         "finish_reason": "stop" if completion.stopped else "length"}],
            "usage": {"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens,
                      "total_tokens": completion.prompt_tokens + completion.completion_tokens},
        }

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: HttpRequest, error: RequestValidationError) -> JSONResponse:
        # OpenAI clients read {"error": {"message": ...}}, not FastAPI's 422 detail list.
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in error.errors())
        return openai_error(400, f"invalid request: {problems}")

    return app


def require_loopback(host: str) -> None:
    """The server has no authentication: it must not be reachable from other machines."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"--host {host}: the server binds loopback addresses only (127.0.0.1, ::1, localhost)")


class BackgroundServer:
    """Runs the app with uvicorn in a daemon thread (tests, notebooks); port 0 picks a free port.

        with BackgroundServer(app) as server:
            httpx.get(f"{server.base_url}/models")
    """

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, start_timeout: float = 30.0):
        require_loopback(host)
        self.host = host
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, name="crossagent-serve", daemon=True)
        self._start_timeout = start_timeout
        self.port = port

    def start(self) -> "BackgroundServer":
        self._thread.start()
        deadline = time.monotonic() + self._start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.host}:{self.port} did not start")
            time.sleep(0.02)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def register(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="serve a local model over an OpenAI-compatible HTTP API")
    serve.add_argument("--model", type=Path, required=True, help="checkpoint directory (config.json, weights, processor)")
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default: {DEFAULT_PORT}")
    serve.add_argument("--name", help="model id clients send (default: the directory's name)")
    serve.add_argument("--device", help="cuda or cpu (default: cuda if available)")
    serve.add_argument("--dtype", help="float32, bfloat16 or float16 (default: bfloat16 on cuda, float32 on cpu)")
    serve.add_argument("--max-batch-size", type=int, default=16, help="requests generated together (default: 16)")
    serve.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    require_loopback(args.host)
    model, processor = load_model(args.model, device=args.device, dtype=args.dtype)
    name = args.name or args.model.resolve().name
    app = create_app(model, processor, name, args.max_batch_size)
    print(f"serving {name} from {args.model} at http://{args.host}:{args.port}/v1")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
