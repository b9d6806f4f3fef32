"""Chat prompts: a system prompt per output format, the instruction in the first user turn,
and a history of the last H turns (each an image and the model's reply).

An observation may carry the text view (envs.text_view) beside or instead of the image; the
system prompt then explains it once. Only the current observation shows its text view: past
turns keep their image and reply, so the prompt stays short.

Two prompt styles (`prompt_style`):
- "full" (the default, for real VLMs): a human-readable system prompt that states the game, the output
  format and its action space (~300-400 tokens, the same in every example of a format);
- "compact" (for small models trained from scratch, the demo's tiny model): no system prompt; the first
  user turn starts with the output format's name in brackets (`[mixed] Collect wood.`). Such a model
  learns the format and the action space from its training data, so restating them only costs compute
  (measured: the system prompt was 61-76 % of every training example's tokens).
A model is evaluated with the style it was trained with: the dataset builder and the policy both build
their prompts here.

Messages use the Hugging Face chat format, so any chat template (Qwen2-VL's included) renders
them: content items are {"type": "text", "text": ...} or {"type": "image"}; the images travel
separately, in order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from crossagent.actions import latent, motion
from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.envs.crafter_vocabulary import VOCABULARY

# Formats labelled by rules from any recording: the default set (`data label`, the demo, the all-in-one mix,
# the tokenizer's corpus).
OUTPUT_FORMATS = ("raw", "motion", "grounding", "skill", "motion_coa", "grounding_coa", "mixed")
# Formats labelled by a learned model (the latent codebook's encoder): opt-in, given its checkpoint.
LEARNED_FORMATS = ("latent",)
KNOWN_FORMATS = (*OUTPUT_FORMATS, *LEARNED_FORMATS)
DEFAULT_HISTORY = 3
PROMPT_STYLES = ("compact", "full")
OBSERVES = {"image": (True, False), "text": (False, True), "both": (True, True)}  # -> (use_image, use_text)

ROLE = ("You play Crafter, a 2D open-world survival game seen from above: you are in the centre of the "
        "image, the bottom rows show your health, food, drink, energy and inventory. You get a task and "
        "reply with actions.")
SPACES = {
    "raw": f"`Action: NAME`, NAME one of: {', '.join(ACTION_NAMES)}. It runs for one step.",
    "motion": f"`Motion: PHRASE [COUNT]`, PHRASE one of: {', '.join(VOCABULARY.motion.phrases.values())}; COUNT 1-"
              f"{motion.MAX_REPEAT} repeats it.",
    "grounding": f"`Grounding: VERB <|object_ref_start|>LABEL<|object_ref_end|><|point_start|>(X,Y)<|point_end|>`"
                 f" with X, Y the point on the image on a 0-999 scale (X column, Y row); VERB one of: "
                 f"{', '.join(VOCABULARY.grounding.verbs)} (explore and no-op take no point).",
    "skill": f"`Skill: SUBGOAL`, SUBGOAL one of: {', '.join(VOCABULARY.skill.sentences)}.",
    "latent": f"`Latent: <|latent_N|>`, N one of 0-{latent.CODES - 1}: a learned code for a short chunk of primitive "
              "actions.",
}
LAYOUTS = {
    "raw": "Reply with one line: `Action: ...`.",
    "motion": "Reply with one line: `Motion: ...`; it runs until done.",
    "grounding": "Reply with one line: `Grounding: ...`; it runs until the target is reached and acted on.",
    "skill": "Reply with one line: `Skill: ...`; it runs until the subgoal is done.",
    "latent": "Reply with one line: `Latent: ...`; its chunk of actions runs.",
    "motion_coa": "Reply with two lines: `Motion: ...` (what you intend), then `Action: ...` (what runs now).",
    "grounding_coa": "Reply with two lines: `Grounding: ...` (what you intend), then `Action: ...` (what runs now).",
    "mixed": "Reply with the level that fits the moment: an upper level (`Skill:`, `Grounding:` or "
             "`Motion:`) hands control to its executor; add `Action: ...` as the last line to act yourself "
             "for one step.",
}
LEVELS_OF_FORMAT = {
    "raw": ("raw",), "motion": ("motion",), "grounding": ("grounding",), "skill": ("skill",),
    "motion_coa": ("motion", "raw"), "grounding_coa": ("grounding", "raw"),
    "mixed": ("skill", "grounding", "motion", "raw"),
    "latent": ("latent",),
}
# Formats whose reply holds any ordered selection of their levels (the model picks); the others hold every one.
PICKS_ITS_LEVELS = ("mixed",)


TEXT_VIEW = ("The current observation {comes} as text: the 9x7 cells around you row by row (you are the @ in "
             f"the middle), what you face, your vitals, inventory, the achievements unlocked this episode and the time of day; {VOCABULARY.text_view.legend}.")


def system_prompt(output_format: str, with_text: bool = False, with_image: bool = True) -> str:
    check_format(output_format)
    spaces = "\n".join(f"- {SPACES[level]}" for level in LEVELS_OF_FORMAT[output_format])
    text_view = "\n" + TEXT_VIEW.format(comes="also comes" if with_image else "comes") if with_text else ""
    return f"{ROLE}{text_view}\nAction space:\n{spaces}\n{LAYOUTS[output_format]}"


def check_format(output_format: str) -> str:
    if output_format not in KNOWN_FORMATS:
        raise ValueError(f"unknown output format {output_format!r} (known: {', '.join(KNOWN_FORMATS)})")
    return output_format


def check_prompt_style(prompt_style: str) -> str:
    if prompt_style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {prompt_style!r} (known: {', '.join(PROMPT_STYLES)})")
    return prompt_style


def task_line(output_format: str, instruction: str, prompt_style: str) -> str:
    """The first user turn's text: the task, and in the compact style the output format too."""
    return f"Task: {instruction}" if prompt_style == "full" else f"[{output_format}] {instruction}"


@dataclass(frozen=True)
class Turn:
    """One past step: what was seen and what the model replied."""

    image: np.ndarray | None
    text: str | None
    reply: str


def observation_content(image: np.ndarray | None, text: str | None) -> list[dict]:
    content = []
    if image is not None:
        content.append({"type": "image"})
    if text is not None:
        content.append({"type": "text", "text": text})
    return content


def build_messages(output_format: str, instruction: str, history: list[Turn], image: np.ndarray | None,
                   text: str | None = None, history_length: int = DEFAULT_HISTORY, prompt_style: str = "full"
                   ) -> tuple[list[dict], list[np.ndarray]]:
    """Messages and their images, in order: system (full style only), then the last H turns, then the
    current observation. Training examples (data.builders) and the policy's prompts (agents.model_policy)
    both come from here, so a step's example and its evaluation prompt are the same.

    The text view of past turns is left out (see the module's docstring).
    """
    check_prompt_style(prompt_style)
    kept = [replace(turn, text=None) for turn in history[-history_length:]] if history_length > 0 else []
    messages = []
    if prompt_style == "full":
        system = system_prompt(output_format, with_text=text is not None, with_image=image is not None)
        messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
    else:
        check_format(output_format)
    images = []
    first = True
    for turn in [*kept, Turn(image, text, "")]:
        content = observation_content(turn.image, turn.text)
        if first:
            content = [{"type": "text", "text": task_line(output_format, instruction, prompt_style)}, *content]
            first = False
        messages.append({"role": "user", "content": content})
        if turn.image is not None:
            images.append(turn.image)
        if turn.reply:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": turn.reply}]})
    return messages, images
