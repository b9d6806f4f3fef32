"""Raw action tokens (RA, spec section 3): an env action as reserved tokens of the LM.

VPT-style factorisation: each group below is one token whose value picks an
option of the group; the camera is two mu-law bins. A sequence is
`BEGIN <non-default button groups> <pitch bin> <yaw bin> END`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossagent.actions.minecraft.camera_quantizer import FINE_QUANTIZER, CameraQuantizer
from crossagent.actions.minecraft.env_action import EnvAction, camera_of, make_action, null_action
from crossagent.actions.minecraft.profile import CROSSAGENT, McProfile
from crossagent.actions.parse_error import ParseError

# Options of each button group; value 0 (None) is "nothing pressed in this group".
BUTTON_GROUPS: dict[str, tuple[str | None, ...]] = {
    "hotbar": (None, *(f"hotbar.{i}" for i in range(1, 10))),
    "fore_back": (None, "forward", "back"),
    "left_right": (None, "left", "right"),
    "sprint_sneak": (None, "sprint", "sneak"),
    "use": (None, "use"),
    "drop": (None, "drop"),
    "attack": (None, "attack"),
    "jump": (None, "jump"),
    "inventory": (None, "inventory"),
}
# Pressing both buttons of these pairs cancels out (VPT's rule); in the other
# groups the option listed last wins (sneak over sprint, the higher hotbar slot).
_CANCELLING_GROUPS = ("fore_back", "left_right")
CAMERA_FLAG = "camera"  # 1 when the camera moved; derived from the bins, never needed to decode
PITCH, YAW = "pitch", "yaw"
BEGIN, END = "begin", "end"

# The order in which `reserved_token_vocabulary` hands out numbers. From start 176 it
# reproduces the released Qwen2-VL numbering (OpenHA's action_mapping): inventory
# 176-177, begin 178, end 179, hotbar 180-189, ..., camera flag 207-208,
# pitch 209-229, yaw 230-250.
NUMBERING_ORDER: tuple[str, ...] = (
    "inventory", BEGIN, END, "hotbar", "fore_back", "left_right", "sprint_sneak",
    "use", "drop", "attack", "jump", CAMERA_FLAG, PITCH, YAW,
)


def group_sizes(n_camera_bins: int) -> dict[str, int]:
    sizes = {group: len(options) for group, options in BUTTON_GROUPS.items()}
    return {**sizes, CAMERA_FLAG: 2, PITCH: n_camera_bins, YAW: n_camera_bins}


@dataclass(frozen=True)
class RawTokenVocabulary:
    """Which token string stands for each (group, value), plus the begin/end tokens."""

    begin: str
    end: str
    tokens: Mapping[tuple[str, int], str]
    _by_token: dict[str, tuple[str, int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n_camera_bins = sum(1 for group, _ in self.tokens if group == PITCH)
        expected = {(g, v) for g, size in group_sizes(n_camera_bins).items() for v in range(size)}
        if set(self.tokens) != expected:
            raise ValueError("vocabulary must give a token to every value of every group")
        strings = [self.begin, self.end, *self.tokens.values()]
        if len(set(strings)) != len(strings) or not all(strings):
            raise ValueError("vocabulary tokens must be distinct and non-empty")
        object.__setattr__(self, "_by_token", {token: key for key, token in self.tokens.items()})

    @property
    def n_camera_bins(self) -> int:
        return sum(1 for group, _ in self.tokens if group == PITCH)

    def lookup(self, token: str) -> tuple[str, int]:
        """(group, value) of a group token; KeyError for any other string."""
        return self._by_token[token]

    def to_json(self) -> dict[str, Any]:
        """`{"begin": T, "end": T, "groups": {GROUP: [token of value 0, 1, ...]}}`."""
        groups: dict[str, list[str]] = {}
        for (group, value), token in sorted(self.tokens.items(), key=lambda item: (NUMBERING_ORDER.index(item[0][0]),
                                                                                   item[0][1])):
            groups.setdefault(group, []).append(token)
        return {"begin": self.begin, "end": self.end, "groups": groups}

    @classmethod
    def from_json(cls, table: Mapping[str, Any]) -> RawTokenVocabulary:
        """A table written by `to_json`: how another model family (llama, mistral, ...) spells the tokens."""
        try:
            tokens = {(group, value): token for group, options in table["groups"].items()
                      for value, token in enumerate(options)}
            return cls(begin=table["begin"], end=table["end"], tokens=tokens)
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not a raw-token table (needs begin, end and groups): {error}") from None


def load_token_table(path: str | Path) -> RawTokenVocabulary:
    try:
        table = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error.msg})") from None
    try:
        return RawTokenVocabulary.from_json(table)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def reserved_token_vocabulary(
    start: int = 176,
    n_camera_bins: int = 21,
    template: str = "<|reserved_special_token_{}|>",
) -> RawTokenVocabulary:
    """Number the tokens consecutively from `start` in NUMBERING_ORDER."""
    sizes = {**group_sizes(n_camera_bins), BEGIN: 1, END: 1}
    numbers: dict[tuple[str, int], str] = {}
    k = start
    for group in NUMBERING_ORDER:
        for value in range(sizes[group]):
            numbers[(group, value)] = template.format(k)
            k += 1
    begin, end = numbers.pop((BEGIN, 0)), numbers.pop((END, 0))
    return RawTokenVocabulary(begin=begin, end=end, tokens=numbers)


def button_group_values(action: Mapping[str, Any]) -> dict[str, int]:
    """The value each button group takes for an env action (buttons outside the groups are dropped)."""
    values = {}
    for group, options in BUTTON_GROUPS.items():
        chosen = [i for i, button in enumerate(options) if button and action.get(button, 0)]
        if group in _CANCELLING_GROUPS and len(chosen) == 2:
            chosen = []
        values[group] = chosen[-1] if chosen else 0
    return values


@dataclass(frozen=True)
class RawTokenCodec:
    vocabulary: RawTokenVocabulary = field(default_factory=reserved_token_vocabulary)
    quantizer: CameraQuantizer = FINE_QUANTIZER
    # VPT's joint action space: an action with inventory encodes as the null action, and a decoded
    # inventory token drops the other buttons (the released encoder's rule; False keeps everything).
    inventory_exclusive: bool = False
    _token_re: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.vocabulary.n_camera_bins != self.quantizer.n_bins:
            raise ValueError(
                f"vocabulary has {self.vocabulary.n_camera_bins} camera bins, quantizer {self.quantizer.n_bins}"
            )
        # Longest first, so that no token is read as another one's prefix.
        tokens = sorted(self.vocabulary.tokens.values(), key=len, reverse=True)
        object.__setattr__(self, "_token_re", re.compile("|".join(map(re.escape, tokens))))

    @classmethod
    def for_profile(cls, profile: McProfile = CROSSAGENT, vocabulary: RawTokenVocabulary | None = None,
                    quantizer: CameraQuantizer = FINE_QUANTIZER) -> RawTokenCodec:
        return cls(vocabulary or reserved_token_vocabulary(n_camera_bins=quantizer.n_bins), quantizer,
                   inventory_exclusive=profile.inventory_exclusive)

    def encode(self, action: Mapping[str, Any]) -> str:
        """Like the released encoders: only the non-default button groups, then both camera bins."""
        vocab = self.vocabulary
        if self.inventory_exclusive and action.get("inventory", 0):
            action = null_action()
        pitch_bin, yaw_bin = (int(b) for b in self.quantizer.encode(camera_of(action)))
        parts = [vocab.tokens[(g, v)] for g, v in button_group_values(action).items() if v]
        parts += [vocab.tokens[(PITCH, pitch_bin)], vocab.tokens[(YAW, yaw_bin)]]
        return vocab.begin + "".join(parts) + vocab.end

    def decode(self, text: str) -> EnvAction | ParseError:
        """The env action of the last complete BEGIN ... END span in `text`. Within a span a
        repeated group keeps its last value, and a missing camera bin means no move."""
        vocab = self.vocabulary
        stop = text.rfind(vocab.end)
        if stop < 0:
            return ParseError("no end token", text)
        start = text.rfind(vocab.begin, 0, stop)
        if start < 0:
            return ParseError("no begin token before the last end token", text)
        body = text[start + len(vocab.begin):stop]
        leftover = self._token_re.sub("", body)
        if leftover.strip():
            return ParseError(f"unknown text inside the action: {leftover.strip()[:40]!r}", text)

        values = {group: 0 for group in BUTTON_GROUPS}
        bins = {PITCH: self.quantizer.null_bin, YAW: self.quantizer.null_bin}
        for token in self._token_re.findall(body):
            group, value = vocab.lookup(token)
            if group in bins:
                bins[group] = value
            elif group in values:  # the camera flag is implied by the bins
                values[group] = value
        if self.inventory_exclusive and values["inventory"]:
            values = {group: value if group == "inventory" else 0 for group, value in values.items()}
        pressed = [BUTTON_GROUPS[g][v] for g, v in values.items() if v]
        camera = self.quantizer.decode([bins[PITCH], bins[YAW]])
        return make_action(pressed, camera=(float(camera[0]), float(camera[1])))
