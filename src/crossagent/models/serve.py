"""`crossagent serve`: an OpenAI-compatible chat server over a local model.

    crossagent serve --model PATH [--host 127.0.0.1] [--port 8000] [--threads 1] [limits]

Endpoints: `GET /v1/models` and `POST /v1/chat/completions` (text and base64 `image_url`
parts; no streaming, n = 1; vLLM's `structured_outputs` grammar or regex constrains a reply). Concurrent requests are generated in batches. The server has
no authentication, so it binds loopback addresses only.

A request is read (at most `max_body_bytes`), validated (models.chat_api) and tokenized
(models.serve_requests) on its own, off the event loop, before it joins a batch: a bad
request gets a 400 and nobody else notices it. Shutdown (SIGTERM, Ctrl-C) waits
SHUTDOWN_GRACE_SECONDS for requests in flight, then stops the running batch at its next token.
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
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from transformers import PreTrainedModel
from transformers.processing_utils import ProcessorMixin

from crossagent.arguments import int_in_range
from crossagent.models.batching import GenerationQueue, QueueClosed
from crossagent.models.chat_api import request_schema
from crossagent.models.loading import load_model
from crossagent.models.serve_requests import ClientError, PreparedRequest, RequestPreparer, ServeLimits
from crossagent.models.threads import add_threads_option, use_threads

DEFAULT_PORT = 8000
SHUTDOWN_GRACE_SECONDS = 2.0


class BodyTooLarge(Exception):
    """The request body passed ServeLimits.max_body_bytes (HTTP 413)."""


class ModelNotServed(LookupError):
    """The request names another model (HTTP 404)."""


def openai_error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"message": message, "type": kind, "code": status}})


def validation_message(error: ValidationError) -> str:
    """Every problem, each after its field's path: messages[0].content[1].image_url.url: ..."""
    problems = []
    for problem in error.errors():
        path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem["loc"]).lstrip(".")
        problems.append(f"{path or 'body'}: {problem['msg']}")
    return "invalid request: " + "; ".join(problems)


async def read_body(http: HttpRequest, max_bytes: int) -> bytes:
    """The request body, or BodyTooLarge as soon as it passes `max_bytes` (a declared length is checked first)."""
    declared = http.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge()
    chunks, size = [], 0
    async for chunk in http.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def context_length(model: PreTrainedModel) -> int:
    return model.config.get_text_config().max_position_embeddings


def create_app(model: PreTrainedModel, processor: ProcessorMixin, model_name: str,
               max_batch_size: int = 16, limits: ServeLimits = ServeLimits()) -> FastAPI:
    generations: dict[str, GenerationQueue] = {}
    schema = request_schema(limits.max_tokens)
    preparer = RequestPreparer(processor, limits, limits.max_prompt_tokens or context_length(model),
                               model.config.get_text_config().vocab_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        generations["queue"] = GenerationQueue(model, processor, max_batch_size)
        yield
        generations.pop("queue").close()

    app = FastAPI(title="crossagent serve", lifespan=lifespan)
    created = int(time.time())

    def prepare(body: bytes) -> PreparedRequest:
        request = schema.model_validate_json(body)
        if request.model is not None and request.model != model_name:
            raise ModelNotServed(f"model {request.model!r} is not served here (serving {model_name!r})")
        return preparer.prepare(request)

    @app.get("/v1/models")
    async def list_models() -> dict:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": created,
                                            "owned_by": "crossagent"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(http: HttpRequest):
        try:
            body = await read_body(http, limits.max_body_bytes)
        except BodyTooLarge:
            return openai_error(413, f"the request body is larger than the limit of {limits.max_body_bytes} bytes")
        # Parsing, image decoding and tokenizing run in a thread: the event loop keeps answering (and stopping).
        try:
            prepared = await asyncio.to_thread(prepare, body)
        except ValidationError as error:
            return openai_error(400, validation_message(error))
        except ClientError as error:
            return openai_error(400, str(error))
        except ModelNotServed as error:
            return openai_error(404, str(error), "model_not_found")
        try:
            completion = await asyncio.wrap_future(generations["queue"].submit(prepared.request, prepared.settings,
                                                                               prepared.grammar))
        except QueueClosed as error:
            return openai_error(503, str(error), "server_error")
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


def uvicorn_server(app: FastAPI, host: str, port: int, log_level: str) -> uvicorn.Server:
    # Past the grace period uvicorn cancels requests in flight; the lifespan then stops the running batch.
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                         timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS))


class BackgroundServer:
    """Runs the app with uvicorn in a daemon thread (tests, notebooks); port 0 picks a free port.

        with BackgroundServer(app) as server:
            httpx.get(f"{server.base_url}/models")
    """

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, start_timeout: float = 30.0):
        require_loopback(host)
        self.host = host
        self._server = uvicorn_server(app, host, port, log_level="warning")
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
    serve.add_argument("--port", type=int_in_range(1, 65535), default=DEFAULT_PORT, help=f"default: {DEFAULT_PORT}")
    serve.add_argument("--name", help="model id clients send (default: the directory's name)")
    serve.add_argument("--device", help="cuda or cpu (default: cuda if available)")
    serve.add_argument("--dtype", help="float32, bfloat16 or float16 (default: bfloat16 on cuda, float32 on cpu)")
    serve.add_argument("--max-batch-size", type=int_in_range(1), default=16,
                       help="requests generated together (default: 16)")
    add_threads_option(serve)
    limits = serve.add_argument_group("limits of one request (larger: 413; the others: 400)")
    defaults = ServeLimits()
    limits.add_argument("--max-body-bytes", type=int_in_range(1), default=defaults.max_body_bytes,
                        help=f"the JSON body, images included (default: {defaults.max_body_bytes})")
    limits.add_argument("--max-prompt-tokens", type=int_in_range(1), default=defaults.max_prompt_tokens,
                        help="the prompt, visual tokens included (default: the model's context length)")
    limits.add_argument("--max-tokens-limit", type=int_in_range(1), default=defaults.max_tokens,
                        help=f"the largest max_tokens a request may ask for (default: {defaults.max_tokens})")
    limits.add_argument("--max-image-pixels", type=int_in_range(1), default=defaults.max_image_pixels,
                        help=f"all of a request's images together (default: {defaults.max_image_pixels})")
    serve.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    require_loopback(args.host)
    use_threads(args.threads)
    model, processor = load_model(args.model, device=args.device, dtype=args.dtype)
    name = args.name or args.model.resolve().name
    limits = ServeLimits(max_body_bytes=args.max_body_bytes, max_prompt_tokens=args.max_prompt_tokens,
                         max_tokens=args.max_tokens_limit, max_image_pixels=args.max_image_pixels)
    app = create_app(model, processor, name, args.max_batch_size, limits)
    print(f"serving {name} from {args.model} at http://{args.host}:{args.port}/v1", flush=True)
    uvicorn_server(app, args.host, args.port, log_level="info").run()
    return 0
