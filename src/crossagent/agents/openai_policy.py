"""A reply policy over an OpenAI-compatible chat server (`crossagent serve`, vLLM, ...).

Same prompts as ModelPolicy; images go as base64 PNG data URLs. Talks plain HTTP with
httpx, so the `openai` package is not needed.
"""

from __future__ import annotations

import httpx

from crossagent.agents.model_policy import SEED_STRIDE, ChatEpisode
from crossagent.envs.crafter_env import Observation
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.models.openai_messages import to_openai_messages
from crossagent.models.prompts import DEFAULT_HISTORY
from crossagent.tasks.task import Task


class ChatServerError(RuntimeError):
    """The server could not be reached, timed out, or answered with an error."""


class OpenAIChatPolicy:
    uses_privileged_state = False

    def __init__(self, base_url: str, model: str, output_format: str = "mixed",
                 history_length: int = DEFAULT_HISTORY, temperature: float = 0.0, top_p: float = 1.0,
                 max_tokens: int = 64, timeout: float = 60.0, api_key: str | None = None,
                 needs_image: bool = True, needs_text: bool = False, name: str | None = None):
        """`base_url` ends where OpenAI's does, at `/v1` (e.g. http://127.0.0.1:8000/v1)."""
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.temperature = temperature
        self.top_p = top_p
        self.max_tokens = max_tokens
        self.needs_image = needs_image
        self.needs_text = needs_text
        self.chat = ChatEpisode(output_format, history_length, needs_image, needs_text)
        self.name = name or f"openai:{model}:{output_format}"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)
        self._seed = 0
        self._calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def reset(self, task: Task, seed: int) -> None:
        self.chat.reset(task.instruction)
        self._seed = seed
        self._calls = 0

    def reply(self, observation: Observation, state: PrivilegedState | None = None) -> str:
        messages, images = self.chat.request(observation)
        body = {
            "model": self.model,
            "messages": to_openai_messages(messages, images),
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self._seed * SEED_STRIDE + self._calls,  # reproducible per episode where the server honours seeds
        }
        data = self._post(body)
        try:
            reply = data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as error:
            raise ChatServerError(f"{self.url}: the answer has no choices[0].message.content: {str(data)[:200]}") \
                from error
        usage = data.get("usage") or {}
        self.prompt_tokens += int(usage.get("prompt_tokens", 0))
        self.completion_tokens += int(usage.get("completion_tokens", 0))
        self.chat.accept(reply)
        self._calls += 1
        return reply

    def _post(self, body: dict) -> dict:
        try:
            response = self._client.post(self.url, json=body)
        except httpx.TimeoutException as error:
            raise ChatServerError(f"{self.url}: no answer within {self._client.timeout.read} s") from error
        except httpx.TransportError as error:
            raise ChatServerError(f"{self.url}: cannot reach the server ({error}); is it running?") from error
        if response.status_code != 200:
            raise ChatServerError(f"{self.url}: HTTP {response.status_code}: {error_message(response)}")
        try:
            return response.json()
        except ValueError as error:
            raise ChatServerError(f"{self.url}: the answer is not JSON: {response.text[:200]}") from error

    def close(self) -> None:
        self._client.close()


def error_message(response: httpx.Response) -> str:
    """OpenAI-style servers put the reason in error.message (vLLM too); fall back to the body."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
