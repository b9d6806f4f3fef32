"""Structured outputs through `crossagent serve`: vLLM's request fields constrain a reply, and a constrained
ServerSampler sends its format's grammar, so the server's replies equal the constrained local ones."""

import json

import httpx
import pytest

from crossagent.actions.chain import parse_reply
from crossagent.models.generation import GenerationSettings
from crossagent.models.openai_messages import to_openai_messages
from crossagent.models.output_grammar import follows_format, output_grammar
from crossagent.models.prompts import OUTPUT_FORMATS, build_messages
from crossagent.models.reply_request import ReplyRequest
from crossagent.models.samplers import LocalSampler, ServerSampler
from crossagent.models.serve import BackgroundServer, create_app

from .conftest import observation

MAX_TOKENS = 160  # room for any canonical reply (test_constrained_decoding.ROOM)


@pytest.fixture(scope="module")
def server(tiny):
    with BackgroundServer(create_app(*tiny, "tiny")) as running:
        yield running


def format_requests() -> list[ReplyRequest]:
    return [ReplyRequest(*build_messages(output_format, "Collect wood.", [], observation(i).image), seed=20 + i,
                         output_format=output_format) for i, output_format in enumerate(OUTPUT_FORMATS)]


def test_a_constrained_server_sampler_equals_the_constrained_local_one(server, tiny):
    remote = ServerSampler(server.base_url, "tiny", temperature=1.0, max_tokens=MAX_TOKENS, constrained=True)
    local = LocalSampler(*tiny, GenerationSettings(max_new_tokens=MAX_TOKENS, do_sample=True, temperature=1.0),
                         constrained=True)
    requests = format_requests()
    replies = [sample.text for sample in remote.sample(requests)]
    remote.close()
    assert replies == [sample.text for sample in local.sample(requests)]
    for output_format, reply in zip(OUTPUT_FORMATS, replies):
        assert follows_format(parse_reply(reply), output_format), reply


def test_the_sampler_sends_the_grammar_only_when_constrained():
    bodies = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={"choices": [{"message": {"content": "Action: noop"}, "finish_reason": "stop"}]})

    request = format_requests()[0]
    for constrained in (True, False):
        sampler = ServerSampler("http://127.0.0.1:1/v1", "tiny", constrained=constrained,
                                client=httpx.Client(transport=httpx.MockTransport(answer)))
        sampler.sample([request])
    assert bodies[0]["structured_outputs"] == {"grammar": output_grammar(request.output_format).text}
    assert "structured_outputs" not in bodies[1]


def post(server, **fields) -> httpx.Response:
    messages, images = build_messages("raw", "Collect wood.", [], observation(0).image)
    return httpx.post(f"{server.base_url}/chat/completions", timeout=60, json={
        "messages": to_openai_messages(messages, images), "temperature": 1.0, "seed": 3, "max_tokens": 40, **fields})


@pytest.mark.parametrize("fields", [
    {"structured_outputs": {"regex": "Action: (noop|do)"}},
    {"guided_regex": "Action: (noop|do)"},  # vLLM's name before 0.12
    {"structured_outputs": {"grammar": 'start: "Action: " ("noop" | "do")'}},
    {"guided_grammar": 'start: "Action: " ("noop" | "do")'},
])
def test_the_server_constrains_a_reply_to_a_regex_or_grammar(server, fields):
    answer = post(server, **fields)
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] in ("Action: noop", "Action: do")
    assert answer.json()["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("fields, words", [
    ({"structured_outputs": {"grammar": "start: <|no_such_token|>"}}, "does not compile"),
    ({"structured_outputs": {"regex": "(ab"}}, "does not compile"),
    ({"structured_outputs": {"json": {"type": "object"}}}, "structured_outputs.json"),
    ({"structured_outputs": {}}, "exactly one of grammar and regex"),
    ({"structured_outputs": {"regex": "a"}, "guided_regex": "b"}, "at most one constraint"),
])
def test_a_constraint_the_server_cannot_follow_is_a_400(server, fields, words):
    answer = post(server, **fields)
    assert answer.status_code == 400
    assert words in answer.json()["error"]["message"]
