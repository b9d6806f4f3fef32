"""Crafter's vocabulary as crossagent speaks it, read once from crafter_vocabulary.yaml.

The file is the one place for the words that the action levels, labels, prompts, text view and
start states use (skills and their aliases, grounding verbs, motion phrases, mob names, the
achievement -> skill table ...), as crafter keeps its own rules in its data.yaml. Every module
reads `VOCABULARY`; nothing keeps a copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from crafter import objects
from ruamel.yaml import YAML

PACKAGED_PATH = Path(str(resources.files("crossagent.envs") / "crafter_vocabulary.yaml"))
Cell = tuple[int, int]


@dataclass(frozen=True)
class Mob:
    name: str
    object_class: type
    hostile: bool
    floor: str  # the material a start state puts it on when its cell is not walkable
    achievement: str  # counts up when one is defeated (eaten, for a cow)


@dataclass(frozen=True)
class MotionWords:
    phrases: Mapping[str, str]  # primitive action -> phrase, in crafter's action order
    aliases: Mapping[str, str]  # other phrase -> phrase


@dataclass(frozen=True)
class GroundingWords:
    verbs: tuple[str, ...]
    verbs_without_point: tuple[str, ...]
    aliases: Mapping[str, str]  # other verb -> verb
    collect_verbs: Mapping[str, str]  # material -> its verb, where that is not `collect`


@dataclass(frozen=True)
class SkillWords:
    sentences: tuple[str, ...]
    sources: Mapping[str, str]  # item of `collect ITEM` -> the material it comes from
    word_aliases: Mapping[str, str]  # word -> word ("" drops it)
    sentence_aliases: Mapping[str, str]  # sentence -> skill sentence
    of_achievement: Mapping[str, str]  # achievement -> the skill sentence it completes


@dataclass(frozen=True)
class TextViewWords:
    material_symbols: Mapping[str | None, str]  # None: beyond the world's edge
    object_symbols: Mapping[type, str]
    legend: str  # "legend: @ you, . grass, ..."
    vitals: tuple[str, ...]


@dataclass(frozen=True)
class CrafterVocabulary:
    directions: Mapping[str, Cell]  # facing name -> step (dx, dy)
    objects: Mapping[str, type]  # name -> crafter.objects class
    object_names: Mapping[type, str]  # the same, the other way round
    mobs: Mapping[str, Mob]
    creatures: Mapping[str, tuple[str, ...]]  # creature -> the grounding verbs acting on it (labels: the first)
    motion: MotionWords
    grounding: GroundingWords
    skill: SkillWords
    text_view: TextViewWords

    @property
    def mob_classes(self) -> tuple[type, ...]:
        return tuple(mob.object_class for mob in self.mobs.values())

    @property
    def hostile_classes(self) -> tuple[type, ...]:
        return tuple(mob.object_class for mob in self.mobs.values() if mob.hostile)


def load_vocabulary(path: Path = PACKAGED_PATH) -> CrafterVocabulary:
    data = YAML(typ="safe", pure=True).load(path.read_text())
    object_class = {name: getattr(objects, class_name) for name, class_name in data["objects"].items()}
    motion, grounding, skill, view = data["motion"], data["grounding"], data["skill"], data["text_view"]
    return CrafterVocabulary(
        directions=_frozen({name: (dx, dy) for name, (dx, dy) in data["directions"].items()}),
        objects=_frozen(object_class),
        object_names=_frozen({cls: name for name, cls in object_class.items()}),
        mobs=_frozen({name: Mob(name, object_class[name], **fields) for name, fields in data["mobs"].items()}),
        creatures=_frozen({name: tuple(verbs) for name, verbs in data["creatures"].items()}),
        motion=MotionWords(_frozen(motion["phrases"]), _frozen(motion["aliases"])),
        grounding=GroundingWords(tuple(grounding["verbs"]), tuple(grounding["verbs_without_point"]),
                                 _frozen(grounding["aliases"]), _frozen(grounding["collect_verbs"])),
        skill=SkillWords(tuple(skill["sentences"]), _frozen(skill["sources"]), _frozen(skill["word_aliases"]),
                         _frozen(skill["sentence_aliases"]), _frozen(skill["of_achievement"])),
        text_view=_text_view(view),
    )


def _text_view(view: dict) -> TextViewWords:
    symbols = view["symbols"]
    materials = {entry["material"]: entry["symbol"] for entry in symbols if "material" in entry}
    return TextViewWords(
        material_symbols=_frozen({**materials, None: view["outside"]}),
        object_symbols=_frozen({getattr(objects, entry["object"]): entry["symbol"]
                                for entry in symbols if "object" in entry}),
        legend="legend: " + ", ".join(f"{entry['symbol']} {entry['legend']}" for entry in symbols if "legend" in entry),
        vitals=tuple(view["vitals"]),
    )


def _frozen(mapping: dict) -> Mapping:
    """A read-only view: the vocabulary is shared by every module, none may change it."""
    return MappingProxyType(mapping)


VOCABULARY = load_vocabulary()
