"""Our chat requests -> OpenAI chat-completions messages (images as base64 PNG data URLs), and images back.

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

def image_to_data_url(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def data_url_to_image(url: str, max_pixels: int) -> np.ndarray:
    """An RGB uint8 array from a base64 data URL (models.chat_api checks its shape), or ValueError:
    not an image, or more than `max_pixels`, checked on the header before the image is decoded."""
    try:
        image = Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2], validate=True)))
        if image.width * image.height > max_pixels:
            raise ValueError(f"the image is {image.width}x{image.height} pixels, more than the {max_pixels} "
                             f"pixels left to this request")
        return np.asarray(image.convert("RGB"))
    except (binascii.Error, UnidentifiedImageError, Image.DecompressionBombError, OSError) as error:
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
