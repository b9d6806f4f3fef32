"""Chat prompts for Minecraft SFT examples, one system prompt per output format.

Messages follow the Hugging Face chat format, as models/prompts.py does for Crafter, so
the same SFT collator renders them: content items are {"type": "text", "text": ...}
or {"type": "image"}, the images travel separately, in order.
"""

from __future__ import annotations

import numpy as np

from crossagent.actions.minecraft.env_action import KEY_TO_BUTTON

ROLE = ("You are an agent playing Minecraft from its screenshots. You get a task, then an image per step, "
        "and reply with what to do next.")
TEXT_ACTION_SPACE = (
    "`Action: PARTS`: move(dx, dy) turns the view by mouse pixels (dx right, dy down), press(KEY, ...) holds "
    f"keys ({', '.join(KEY_TO_BUTTON)}), click(left|right|middle) presses mouse buttons; parts are joined by "
    "` and `, and `Action: no_op` waits.")
MOTION_SPACE = (
    "`Motion: MOTIONS`: movements joined by `, `, such as move forward, sprint, turn left and up, "
    "cursor move right, attack / mine, use / place, jump, switch to hotbar 3, open inventory, close gui, "
    "or no_op.")
SYSTEM_PROMPTS: dict[str, str] = {
    "raw": f"{ROLE}\nAction space:\n- {TEXT_ACTION_SPACE}\nReply with one line: `Action: ...`.",
    "motion_coa": (f"{ROLE}\nAction space:\n- {MOTION_SPACE}\n- {TEXT_ACTION_SPACE}\n"
                   "Reply with two lines: `Motion: ...` (the movement you intend), then `Action: ...` (what runs now)."),
}
OUTPUT_FORMATS: tuple[str, ...] = tuple(SYSTEM_PROMPTS)


def build_messages(output_format: str, instruction: str, history: list[tuple[np.ndarray, str]],
                   image: np.ndarray | None) -> tuple[list[dict], list[np.ndarray]]:
    """System prompt, then the past turns (image, reply), then the current image; the task opens
    the first user turn. Returns the messages and their images in order."""
    if output_format not in SYSTEM_PROMPTS:
        raise ValueError(f"unknown output format {output_format!r} (known: {', '.join(SYSTEM_PROMPTS)})")
    messages: list[dict] = [{"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPTS[output_format]}]}]
    images = []
    turns: list[tuple[np.ndarray | None, str]] = [*history, (image, "")]
    for i, (turn_image, reply) in enumerate(turns):
        content: list[dict] = [{"type": "text", "text": f"Task: {instruction}"}] if i == 0 else []
        if turn_image is not None:
            content.append({"type": "image"})
            images.append(turn_image)
        messages.append({"role": "user", "content": content})
        if reply:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": reply}]})
    return messages, images
