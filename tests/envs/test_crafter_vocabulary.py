"""The vocabulary file is the one source of Crafter's words: the grammars accept exactly its words,
they name only things crafter has, and an edit to the file reaches every module that uses it."""

import json
import subprocess
import sys

import crafter
import pytest

from crossagent.actions import grounding, motion, skill
from crossagent.actions.parse_error import ParseError
from crossagent.envs.crafter_env import ACHIEVEMENTS, ACTION_NAMES
from crossagent.envs.crafter_vocabulary import PACKAGED_PATH, VOCABULARY
from crossagent.envs.start_state import Mob, StartState

SKILLS = VOCABULARY.skill
VERBS = VOCABULARY.grounding


def test_the_skill_grammar_accepts_every_sentence_and_alias_of_the_file():
    for sentence in SKILLS.sentences:
        assert skill.parse(sentence) == skill.Skill(sentence)
    for alias, sentence in SKILLS.sentence_aliases.items():
        assert skill.parse(alias) == skill.Skill(sentence)
    for alias, word in SKILLS.word_aliases.items():
        sentence = next(s for s in SKILLS.sentences if word in s.split()) if word else "explore"
        written = " ".join(alias if w == word else w for w in sentence.split()) if word else f"{alias} explore"
        assert skill.parse(written) == skill.Skill(sentence), written


def test_the_skill_grammar_refuses_what_the_file_does_not_name():
    for sentence in ("eat plant", "make diamond", "collect lava", "defeat player"):
        assert isinstance(skill.parse(sentence), ParseError)


def test_grounding_verbs_round_trip():
    for verb in VERBS.verbs:
        point = None if verb in VERBS.verbs_without_point else (412, 530)
        action = grounding.Grounding(verb, point)
        assert grounding.parse(grounding.to_text(action).removeprefix(grounding.TAG)) == action
    for alias, verb in VERBS.aliases.items():
        point = "" if verb in VERBS.verbs_without_point else "<|point_start|>(1,2)<|point_end|>"
        assert grounding.parse(f"{alias} {point}").verb == verb
    assert isinstance(grounding.parse("fly <|point_start|>(1,2)<|point_end|>"), ParseError)


def test_motion_phrases_and_aliases_parse_to_their_action():
    for action, phrase in VOCABULARY.motion.phrases.items():
        assert motion.parse(phrase) == motion.Motion(action)
    for alias, phrase in VOCABULARY.motion.aliases.items():
        assert motion.parse(alias) == motion.parse(phrase)


def test_the_file_names_only_what_crafter_has():
    assert tuple(VOCABULARY.motion.phrases) == ACTION_NAMES  # every action, in crafter's order
    for name, (dx, dy) in VOCABULARY.directions.items():
        assert abs(dx) + abs(dy) == 1 and f"move_{name}" in ACTION_NAMES
    assert set(SKILLS.of_achievement) <= set(ACHIEVEMENTS)
    assert set(SKILLS.of_achievement.values()) <= set(SKILLS.sentences)
    for item, material in SKILLS.sources.items():
        assert item in crafter.constants.collect[material]["receive"]
    verbs_with_a_thing = {v for v in VERBS.verbs if v.startswith(("place ", "make "))}
    assert verbs_with_a_thing == {f"place {name}" for name in crafter.constants.place} | {
        f"make {item.replace('_', ' ')}" for item in crafter.constants.make}
    assert set(VERBS.collect_verbs) <= set(crafter.constants.collect) and set(VERBS.collect_verbs.values()) <= set(VERBS.verbs)
    for name, mob in VOCABULARY.mobs.items():
        assert name in VOCABULARY.objects and mob.floor in crafter.constants.walkable and mob.achievement in ACHIEVEMENTS
    for name, verbs in VOCABULARY.creatures.items():
        assert name in VOCABULARY.objects and set(verbs) <= set(VERBS.verbs)
    assert set(VOCABULARY.text_view.material_symbols) == {*crafter.constants.materials, None}
    assert set(VOCABULARY.text_view.vitals) <= set(crafter.constants.items)


def test_the_packaged_vocabulary_knows_no_arrow_mob():
    with pytest.raises(ValueError, match="unknown mob 'arrow'"):
        StartState(mobs=(Mob("arrow", 2, 0),))


# A fresh interpreter reads a changed copy of the file before any module imports it.
USE_THE_COPY = """
import json, sys
from pathlib import Path
import crossagent.envs.crafter_vocabulary as vocabulary
vocabulary.VOCABULARY = vocabulary.load_vocabulary(Path(sys.argv[1]))
from crossagent.actions import grounding, skill
from crossagent.envs.start_state import Mob, StartState
from crossagent.models.prompts import system_prompt
StartState(mobs=(Mob("arrow", 2, 0),))  # the packaged file has no such mob: this would raise
print(json.dumps({
    "skill": str(skill.parse("pick flowers")),
    "grounding": str(grounding.parse("shoot <|point_start|>(1,2)<|point_end|>")),
    "prompt": system_prompt("skill"),
}))
"""


def test_an_edit_to_a_copy_of_the_file_reaches_every_module(tmp_path):
    text = PACKAGED_PATH.read_text()
    text = text.replace("mobs:\n", "mobs:\n  arrow: {hostile: true, floor: grass, achievement: defeat_zombie}\n", 1)
    text = text.replace("    - explore\n  # `collect ITEM`", "    - explore\n    - collect flowers\n  # `collect ITEM`", 1)
    text = text.replace("    chop: collect\n", "    chop: collect\n    pick: collect\n", 1)
    text = text.replace("    kill: attack\n", "    kill: attack\n    shoot: attack\n", 1)
    copy = tmp_path / "crafter_vocabulary.yaml"
    copy.write_text(text)
    run = subprocess.run([sys.executable, "-c", USE_THE_COPY, str(copy)], capture_output=True, text=True, check=True)
    seen = json.loads(run.stdout)
    assert seen["skill"] == "Skill(sentence='collect flowers')"
    assert seen["grounding"] == "Grounding(verb='attack', point=(1, 2), label=None)"
    assert "explore, collect flowers." in seen["prompt"]
