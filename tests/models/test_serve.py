"""`crossagent serve` and its client (ServerSampler), over a real server on 127.0.0.1."""

import argparse
from dataclasses import replace
import socket
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from crossagent.agents.model_policy import ModelPolicy
from crossagent.models.batching import GenerationQueue
from crossagent.models.generation import GenerationSettings, generate_batch
from crossagent.models.openai_messages import to_openai_messages
from crossagent.models.prompts import build_messages
from crossagent.models.reply_request import ReplyRequest
from crossagent.models.samplers import ChatServerError, LocalSampler, ServerSampler
from crossagent.models.serve import BackgroundServer, create_app, register, require_loopback

from .conftest import observation, task
from .test_model_policy import ask

MAX_TOKENS = 6


@pytest.fixture(scope="module")
def server(tiny):
    model, processor = tiny
    with BackgroundServer(create_app(model, processor, "tiny")) as running:
        yield running


def raw_policy() -> ModelPolicy:
    made = ModelPolicy(output_format="raw")
    made.reset(task(), seed=0)
    return made


def chat_request(image_seed: int) -> ReplyRequest:
    return ReplyRequest(*build_messages("raw", "Collect wood.", [], observation(image_seed).image), seed=0)


def test_client_reply_equals_the_local_policy(server, tiny):
    remote, local = raw_policy(), raw_policy()
    remote_sampler = ServerSampler(server.base_url, "tiny", max_tokens=MAX_TOKENS)
    local_sampler = LocalSampler(*tiny, GenerationSettings(max_new_tokens=MAX_TOKENS))
    for step in range(2):  # the second call carries a history turn with an image
        reply, _ = ask(remote, observation(step), remote_sampler)
        assert isinstance(reply, str)
        assert reply == ask(local, observation(step), local_sampler)[0]  # PNG is lossless: same greedy reply
    assert remote_sampler.prompt_tokens > 0 and 2 <= remote_sampler.completion_tokens <= 2 * MAX_TOKENS
    remote_sampler.close()


def test_a_batch_of_requests_to_the_server_equals_local_greedy_samples(server, tiny):
    model, processor = tiny
    requests = [chat_request(i) for i in range(3)]
    remote = ServerSampler(server.base_url, "tiny", processor.tokenizer, max_tokens=MAX_TOKENS)
    local = LocalSampler(model, processor, GenerationSettings(max_new_tokens=MAX_TOKENS))
    assert [s.text for s in remote.sample(requests)] == [s.text for s in local.sample(requests)]
    remote.close()


def test_models_and_completion_json(server):
    listed = httpx.get(f"{server.base_url}/models").json()
    assert [m["id"] for m in listed["data"]] == ["tiny"]
    messages, images = build_messages("raw", "Collect wood.", [], observation(0).image)
    answer = httpx.post(f"{server.base_url}/chat/completions", timeout=60, json={
        "model": "tiny", "messages": to_openai_messages(messages, images), "temperature": 0, "max_tokens": 4}).json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["role"] == "assistant"
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert answer["choices"][0]["finish_reason"] in ("stop", "length")


@pytest.mark.parametrize("body, status, words", [
    ({"model": "other", "messages": [{"role": "user", "content": "hi"}]}, 404, "not served"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url",
                                                  "image_url": {"url": "http://example.com/a.png"}}]}]},
     400, "messages[0].content[0].image_url.image_url.url: String should match pattern '^data:image/"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, 400, "messages[0].role"),
    ({"messages": "hi"}, 400, "invalid request: messages: Input should be a valid array"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, 400, "n: Input should be 1"),
])
def test_bad_requests_get_openai_errors(server, body, status, words):
    response = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=30)
    assert response.status_code == status
    assert words in response.json()["error"]["message"]


def test_server_error_reaches_the_client(server):
    sampler = ServerSampler(server.base_url, "not-served", max_tokens=MAX_TOKENS)
    with pytest.raises(ChatServerError, match="HTTP 404: model 'not-served' is not served"):
        ask(raw_policy(), observation(0), sampler)


def test_dead_port_is_a_clear_error():
    with socket.socket() as probe:  # a port that was free a moment ago, and nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sampler = ServerSampler(f"http://127.0.0.1:{port}/v1", "tiny", timeout=5)
    with pytest.raises(ChatServerError, match=f"127.0.0.1:{port}/v1/chat/completions: cannot reach the server"):
        ask(raw_policy(), observation(0), sampler)


def test_concurrent_requests_are_answered_in_batches(tiny):
    model, processor = tiny
    settings = GenerationSettings(max_new_tokens=4)
    requests = [build_messages("raw", "Collect wood.", [], observation(i).image) for i in range(4)]
    queue = GenerationQueue(model, processor, max_batch_size=4)
    try:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda r: queue.submit(r, settings).result(timeout=60), requests))
    finally:
        queue.close()
    assert answers == generate_batch(model, processor, requests, settings)


def test_loopback_only_and_cli_registration():
    for host in ("127.0.0.1", "::1", "localhost"):
        require_loopback(host)
    for host in ("0.0.0.0", "10.0.0.2", "example.com"):
        with pytest.raises(ValueError, match="loopback"):
            require_loopback(host)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--model", "ckpt", "--port", "8123", "--threads", "2"])
    assert (args.host, args.port, args.threads, callable(args.run)) == ("127.0.0.1", 8123, 2, True)


@pytest.mark.parametrize("option, words", [("--port=-1", "--port: -1: must be from 1 to 65535"),
                                           ("--port=http", "--port: 'http' is not a whole number"),
                                           ("--threads=0", "--threads: 0: must be at least 1"),
                                           ("--max-body-bytes=-1", "--max-body-bytes: -1: must be at least 1")])
def test_bad_serve_options_are_usage_errors(capsys, option, words):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--model", "ckpt", option])
    assert words in capsys.readouterr().err


@pytest.mark.parametrize("answer, words", [
    (httpx.Response(200, text="<html>"), "the answer is not JSON: <html>"),
    (httpx.Response(200, json={"choices": []}), r"the answer has no choices\[0\]\.message\.content"),
    (httpx.Response(500, json={"error": {"message": "out of memory"}}), "HTTP 500: out of memory"),
    (httpx.ReadTimeout("slow"), r"no answer within 5(\.0)? s"),
])
def test_server_sampler_errors_name_the_url_and_the_reason(answer, words):
    def reply(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = httpx.Client(transport=httpx.MockTransport(reply), timeout=5)
    sampler = ServerSampler("http://server/v1", "tiny", client=client)
    with pytest.raises(ChatServerError, match=f"http://server/v1/chat/completions: {words}"):
        sampler.sample([chat_request(0)])


def test_server_sampler_sends_the_api_key_and_counts_usage():
    seen = []

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"choices": [{"message": {"content": "Action: noop"}}],
                                         "usage": {"prompt_tokens": 30, "completion_tokens": 4}})

    client = httpx.Client(transport=httpx.MockTransport(reply))
    sampler = ServerSampler("http://server/v1", "tiny", api_key="secret", client=client)
    samples = sampler.sample([chat_request(0), chat_request(0)])
    assert [s.text for s in samples] == ["Action: noop"] * 2 and samples[0].token_ids == ()  # no tokenizer: no ids
    assert seen == ["Bearer secret"] * 2 and (sampler.prompt_tokens, sampler.completion_tokens) == (60, 8)


def test_sampled_requests_with_their_own_seeds_share_a_batch_and_get_their_own_replies(tiny):
    model, processor = tiny
    sampled = GenerationSettings(max_new_tokens=6, do_sample=True, temperature=1.0)
    requests = [build_messages("raw", "Collect wood.", [], observation(i).image) for i in range(4)]
    alone = [generate_batch(model, processor, [request], sampled, seeds=[seed])[0]
             for seed, request in enumerate(requests, start=7)]
    calls = []
    generate = model.generate
    queue = GenerationQueue(model, processor, max_batch_size=4)
    try:
        model.generate = lambda **kwargs: calls.append(kwargs["input_ids"].shape[0]) or generate(**kwargs)
        futures = [queue.submit(request, replace(sampled, seed=seed)) for seed, request in enumerate(requests, start=7)]
        answers = [future.result(timeout=60) for future in futures]
    finally:
        queue.close()
        model.generate = generate
    assert [answer.reply for answer in answers] == [completion.reply for completion in alone]
    assert len(calls) < len(requests)  # different seeds, yet batched together
