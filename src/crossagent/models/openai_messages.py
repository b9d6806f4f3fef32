"""Our chat requests <-> OpenAI chat-completions messages (images as base64 PNG data URLs).

Ours: Hugging Face messages whose image parts are `{"type": "image"}` placeholders, with the
images in a separate list, in order (models.prompts). OpenAI's: the image inside its part,
`{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}`.
"""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from crossagent.models.generation import Request

DATA_URL_PREFIX = "data:image/"


def image_to_data_url(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def data_url_to_image(url: str) -> np.ndarray:
    """An RGB uint8 array, or ValueError: only inline data URLs (the server fetches nothing)."""
    header, comma, payload = url.partition(",")
    if not url.startswith(DATA_URL_PREFIX) or not comma or not header.endswith(";base64"):
        raise ValueError(f"image_url must be a base64 data URL (data:image/png;base64,...), got {url[:40]!r}")
    try:
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(payload, validate=True))).convert("RGB"))
    except (binascii.Error, UnidentifiedImageError, OSError) as error:
        raise ValueError(f"image_url data is not a readable image: {error}") from error


def to_openai_messages(messages: list[dict], images: list[np.ndarray]) -> list[dict]:
    """System and assistant content as plain strings (every server takes those); user content as parts."""
    remaining = iter(images)
    converted = []
    for message in messages:
        parts = []
        for part in message["content"]:
            if part["type"] == "image":
                parts.append({"type": "image_url", "image_url": {"url": image_to_data_url(next(remaining))}})
            else:
                parts.append({"type": "text", "text": part["text"]})
        if message["role"] != "user":
            parts = "".join(part["text"] for part in parts if part["type"] == "text")
        converted.append({"role": message["role"], "content": parts})
    return converted


def from_openai_messages(messages: list[dict]) -> Request:
    """Ours from OpenAI's; ValueError names the message and part that is not understood."""
    converted, images = [], []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
            raise ValueError(f"messages[{index}]: expected an object with role system, user or assistant")
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not isinstance(content, list):
            raise ValueError(f"messages[{index}].content: expected a string or a list of parts")
        parts = []
        for number, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                parts.append({"type": "text", "text": part["text"]})
            elif kind == "image_url" and isinstance(part.get("image_url"), dict):
                images.append(data_url_to_image(str(part["image_url"].get("url", ""))))
                parts.append({"type": "image"})
            else:
                raise ValueError(f"messages[{index}].content[{number}]: expected a text or image_url part")
        converted.append({"role": message["role"], "content": parts})
    return converted, images
