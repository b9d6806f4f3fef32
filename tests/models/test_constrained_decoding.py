"""Constrained decoding: each output format's grammar accepts its canonical replies and nothing malformed, and
the untrained tiny model, constrained, writes only replies that parse, whatever its seed and temperature."""

from dataclasses import replace

import pytest
from hypothesis import given, settings, strategies as st

from crossagent.actions import grounding, motion, raw, skill
from crossagent.actions.chain import format_reply, parse_reply
from crossagent.actions.reply_grammar import chain_grammar
from crossagent.envs.crafter_env import ACTION_NAMES
from crossagent.envs.crafter_vocabulary import VOCABULARY
from crossagent.envs.view_geometry import POINT_SCALE
from crossagent.models.constrained_decoding import Grammar, grammar_compiler
from crossagent.models.generation import GenerationSettings, generate_batch
from crossagent.models.output_grammar import follows_format, output_grammar
from crossagent.models.prompts import LEVELS_OF_FORMAT, OUTPUT_FORMATS, PICKS_ITS_LEVELS, build_messages

from .conftest import observation

# The longest canonical reply (all four lines of `mixed`) is about 130 characters: even written one
# character a token, it ends before this.
ROOM = 160


@pytest.fixture(scope="module")
def compiler(tiny):
    model, processor = tiny
    return grammar_compiler(processor.tokenizer, model.config.get_text_config().vocab_size)


WORDS = VOCABULARY.grounding
ACTIONS = {
    "raw": st.builds(raw.RawAction, st.sampled_from(ACTION_NAMES)),
    "motion": st.builds(motion.Motion, st.sampled_from(ACTION_NAMES), st.integers(1, motion.MAX_REPEAT)),
    "grounding": st.one_of(
        st.builds(grounding.Grounding, st.sampled_from([v for v in WORDS.verbs if v not in WORDS.verbs_without_point]),
                  st.tuples(st.integers(0, POINT_SCALE - 1), st.integers(0, POINT_SCALE - 1)),
                  st.none() | st.sampled_from(grounding.LABELS)),
        st.builds(grounding.Grounding, st.sampled_from(WORDS.verbs_without_point), st.none(),
                  st.none() | st.sampled_from(grounding.LABELS))),
    "skill": st.builds(skill.Skill, st.sampled_from(VOCABULARY.skill.sentences)),
}


@st.composite
def canonical_reply(draw, output_format: str) -> str:
    levels = LEVELS_OF_FORMAT[output_format]
    if output_format in PICKS_ITS_LEVELS:
        levels = draw(st.lists(st.sampled_from(levels), min_size=1, unique=True))
    return format_reply({level: draw(ACTIONS[level]) for level in levels})


@pytest.mark.parametrize("output_format", OUTPUT_FORMATS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_grammar_accepts_every_canonical_reply_of_its_format(compiler, output_format, data):
    reply = data.draw(canonical_reply(output_format))
    assert compiler.accepts(output_grammar(output_format), reply), reply
    assert follows_format(parse_reply(reply), output_format)


POINT = "<|point_start|>({},{})<|point_end|>"
MALFORMED = {
    "raw": ["", "Action: fly", "action: noop", "Action:noop", "Action: noop\n", "Action: noop\nAction: noop",
            "Motion: do", "Action: noop please"],
    "motion": ["Motion: move left 21", "Motion: move left 0", "Motion: move left 1", "Motion: fly 2",
               "Motion: move left x3"],
    "grounding": ["Grounding: collect " + POINT.format(1000, 3), "Grounding: collect " + POINT.format(3, -1),
                  "Grounding: collect " + POINT.format("01", 2), "Grounding: collect",
                  "Grounding: explore " + POINT.format(1, 2), "Grounding: dance " + POINT.format(1, 2),
                  "Grounding: collect <|object_ref_start|>dragon<|object_ref_end|>" + POINT.format(1, 2)],
    "skill": ["Skill: fly", "Skill: collect wood now", "Skill:"],
    "motion_coa": ["Motion: do", "Action: do", "Action: do\nMotion: do", "Motion: do\n\nAction: do"],
    "grounding_coa": ["Grounding: explore", "Action: do\nGrounding: explore"],
    "mixed": ["", "Hello\nAction: do", "Action: do\nSkill: sleep", "Skill: sleep\nSkill: sleep",
              "Skill: sleep\n", "Motion: do\nGrounding: explore"],
}


@pytest.mark.parametrize("output_format, reply", [(f, r) for f, replies in MALFORMED.items() for r in replies])
def test_the_grammar_rejects_malformed_replies(compiler, output_format, reply):
    assert not compiler.accepts(output_grammar(output_format), reply)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_final_level_asks_the_mixed_format_for_chains_that_end_there(compiler, data):
    """Slow mode executes the `Action:` line: its mixed grammar accepts exactly the chains that end with it."""
    reply = data.draw(canonical_reply("mixed"))
    ends_raw = parse_reply(reply).levels[-1] == "raw"
    assert compiler.accepts(output_grammar("mixed", final_level="raw"), reply) == ends_raw, reply
    # A format with a fixed chain keeps it: the final level changes nothing there.
    assert output_grammar("skill", final_level="raw") == output_grammar("skill")


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_constrained_slow_mode_replies_from_the_untrained_model_always_end_with_an_action(tiny, seed):
    model, processor = tiny
    sampling = GenerationSettings(max_new_tokens=ROOM, do_sample=True, temperature=2.0, seed=seed)
    requests = [build_messages("mixed", "Collect wood.", [], observation(seed % 7 + i).image) for i in range(4)]
    completions = generate_batch(model, processor, requests, sampling,
                                 grammars=[output_grammar("mixed", final_level="raw")] * len(requests))
    for completion in completions:
        parsed = parse_reply(completion.reply)
        assert parsed.error is None and parsed.levels[-1] == "raw", completion.reply


def test_a_chain_of_unknown_levels_and_a_grammar_that_does_not_compile_are_refused(compiler):
    with pytest.raises(ValueError, match="each must be one of"):
        chain_grammar(("raw", "dance"), every_level=True)
    with pytest.raises(ValueError, match="final level 'raw' is not one of"):
        chain_grammar(("skill", "motion"), every_level=False, final_level="raw")
    with pytest.raises(ValueError, match="does not compile"):
        compiler.matcher(Grammar("start: <|no_such_token|>"))
    with pytest.raises(ValueError, match="unknown output format"):
        output_grammar("poetry")


def format_requests(seed: int) -> list:
    return [build_messages(output_format, "Collect wood.", [], observation(seed + i).image)
            for i, output_format in enumerate(OUTPUT_FORMATS)]


def format_grammars() -> list[Grammar]:
    return [output_grammar(output_format) for output_format in OUTPUT_FORMATS]


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), temperature=st.sampled_from([1.0, 2.0]))
def test_constrained_sampling_from_the_untrained_model_always_parses(tiny, seed, temperature):
    model, processor = tiny
    sampling = GenerationSettings(max_new_tokens=ROOM, do_sample=True, temperature=temperature, seed=seed)
    completions = generate_batch(model, processor, format_requests(seed % 7), sampling, grammars=format_grammars())
    for output_format, completion in zip(OUTPUT_FORMATS, completions):
        assert completion.stopped, completion.reply
        assert parse_reply(completion.reply).error is None, completion.reply
        assert follows_format(parse_reply(completion.reply), output_format), completion.reply


def test_unconstrained_sampling_from_the_same_model_does_not(tiny):
    """What the property above rules out does happen without the constraint, so that test can fail."""
    model, processor = tiny
    sampling = GenerationSettings(max_new_tokens=32, do_sample=True, temperature=1.0, seed=0)
    replies = [completion.reply for seed in range(2)
               for completion in generate_batch(model, processor, format_requests(seed), replace(sampling, seed=seed))]
    unparseable = [reply for reply in replies if parse_reply(reply).error is not None]
    assert len(unparseable) > len(replies) // 2


def test_a_constrained_batch_equals_each_row_alone_and_free_rows_stay_free(tiny):
    model, processor = tiny
    sampling = GenerationSettings(max_new_tokens=48, do_sample=True, temperature=1.0)
    requests, seeds = format_requests(3), list(range(10, 10 + len(OUTPUT_FORMATS)))
    grammars = [*format_grammars()[:-1], None]  # the last row writes free text
    batch = generate_batch(model, processor, requests, sampling, seeds, grammars=grammars)
    alone = [generate_batch(model, processor, [request], sampling, [seed], grammars=[grammar])[0]
             for request, seed, grammar in zip(requests, seeds, grammars)]
    assert batch == alone
    free = generate_batch(model, processor, requests[-1:], sampling, seeds[-1:])
    assert batch[-1] == free[0]


def test_top_k_filters_among_the_allowed_tokens(tiny):
    """The constraint masks before sampling's filters: top-k 1 keeps the best allowed token, so sampling
    equals constrained greedy decoding (filtering first would keep a token the grammar then forbids)."""
    model, processor = tiny
    requests = format_requests(5)
    greedy = generate_batch(model, processor, requests, GenerationSettings(max_new_tokens=ROOM),
                            grammars=format_grammars())
    top_1 = generate_batch(model, processor, requests, GenerationSettings(max_new_tokens=ROOM, do_sample=True, top_k=1,
                                                                          seed=0), grammars=format_grammars())
    assert [c.reply for c in top_1] == [c.reply for c in greedy]
    assert all(follows_format(parse_reply(c.reply), f) for f, c in zip(OUTPUT_FORMATS, greedy))
