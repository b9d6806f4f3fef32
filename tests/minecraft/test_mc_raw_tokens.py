import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossagent.actions.minecraft.camera_quantizer import COARSE_QUANTIZER, FINE_QUANTIZER
from crossagent.actions.minecraft.env_action import BUTTONS, actions_equal, is_null, make_action, pressed_buttons
from crossagent.actions.parse_error import ParseError
from crossagent.actions.minecraft.profile import CROSSAGENT, OPENHA
from crossagent.actions.minecraft.raw_tokens import (
    BUTTON_GROUPS,
    RawTokenCodec,
    RawTokenVocabulary,
    load_token_table,
    reserved_token_vocabulary,
)


def rst(k: int) -> str:
    return f"<|reserved_special_token_{k}|>"


CODEC = RawTokenCodec()


def test_default_numbering_reproduces_the_released_qwen2_vl_layout():
    vocab = reserved_token_vocabulary()
    assert (vocab.begin, vocab.end) == (rst(178), rst(179))
    assert vocab.tokens[("inventory", 0)] == rst(176) and vocab.tokens[("inventory", 1)] == rst(177)
    assert vocab.tokens[("hotbar", 0)] == rst(180) and vocab.tokens[("hotbar", 9)] == rst(189)
    assert vocab.tokens[("fore_back", 1)] == rst(191)
    assert vocab.tokens[("attack", 1)] == rst(204)
    assert vocab.tokens[("camera", 1)] == rst(208)
    assert vocab.tokens[("pitch", 0)] == rst(209) and vocab.tokens[("pitch", 20)] == rst(229)
    assert vocab.tokens[("yaw", 0)] == rst(230) and vocab.tokens[("yaw", 20)] == rst(250)


def test_numbering_is_configurable():
    vocab = reserved_token_vocabulary(start=0, template="<a{}>")
    assert vocab.tokens[("inventory", 0)] == "<a0>" and vocab.begin == "<a2>" and vocab.tokens[("yaw", 20)] == "<a74>"
    with pytest.raises(ValueError):
        RawTokenVocabulary(begin="<b>", end="<e>", tokens={("hotbar", 0): "<x>"})


def test_encoder_writes_non_default_groups_then_both_bins():
    action = make_action(["forward", "attack"], camera=(0, 2.85))
    assert CODEC.encode(action) == rst(178) + rst(191) + rst(204) + rst(219) + rst(246) + rst(179)
    assert CODEC.encode(make_action()) == rst(178) + rst(219) + rst(240) + rst(179)


def test_decode_example():
    decoded = CODEC.decode(rst(178) + rst(191) + rst(204) + rst(219) + rst(246) + rst(179))
    assert pressed_buttons(decoded) == ("forward", "attack")
    assert decoded["camera"] == [0.0, pytest.approx(2.607, abs=1e-3)]


@pytest.mark.parametrize("pressed, expected", [
    (["forward", "back", "left"], ["left"]),           # opposite pair cancels
    (["left", "right", "jump"], ["jump"]),
    (["sprint", "sneak"], ["sneak"]),                  # later option wins
    (["hotbar.2", "hotbar.7"], ["hotbar.7"]),
    (["ESC", "swapHands", "pickItem", "use"], ["use"]),  # outside the groups
])
def test_group_resolution(pressed, expected):
    decoded = CODEC.decode(CODEC.encode(make_action(pressed)))
    assert set(pressed_buttons(decoded)) == set(expected)


def test_decode_is_lenient_about_surroundings_and_takes_the_last_span():
    first = CODEC.encode(make_action(["jump"]))
    second = CODEC.encode(make_action(["use"], camera=(-45, 0)))
    decoded = CODEC.decode(f"Thought: go.\n{first} then {second}<|im_end|>")
    assert pressed_buttons(decoded) == ("use",)
    assert decoded["camera"] == [-10.0, 0.0]
    # A truncated last span is not executed: the last complete one is.
    assert pressed_buttons(CODEC.decode(first + rst(178) + rst(199))) == ("jump",)
    # The camera flag is implied by the bins; a missing bin means no move.
    assert is_null(CODEC.decode(rst(178) + rst(208) + rst(179)))


@pytest.mark.parametrize("text, reason", [
    ("", "no end"),
    (rst(179), "no begin"),
    (rst(178) + "jump" + rst(179), "unknown text"),
    (rst(178) + rst(12) + rst(179), "unknown text"),
])
def test_decode_errors(text, reason):
    decoded = CODEC.decode(text)
    assert isinstance(decoded, ParseError) and reason in decoded.reason


def test_codec_checks_bins_agree():
    with pytest.raises(ValueError):
        RawTokenCodec(quantizer=COARSE_QUANTIZER)
    coarse = RawTokenCodec(reserved_token_vocabulary(n_camera_bins=11), COARSE_QUANTIZER)
    assert coarse.decode(coarse.encode(make_action(camera=(10, -10))))["camera"] == [pytest.approx(10), pytest.approx(-10)]


# Quantised actions: at most one option per group, camera on bin centres.
group_choices = st.fixed_dictionaries({group: st.sampled_from(options) for group, options in BUTTON_GROUPS.items()})
centres = st.sampled_from([float(c) for c in FINE_QUANTIZER.bin_centres()])


@given(group_choices, centres, centres)
def test_round_trip_of_quantised_actions(choices, pitch, yaw):
    action = make_action([b for b in choices.values() if b], camera=(pitch, yaw))
    assert actions_equal(CODEC.decode(CODEC.encode(action)), action, atol=0.0)


@given(st.sets(st.sampled_from(BUTTONS)), st.floats(-90, 90), st.floats(-180, 180))
def test_any_action_lands_on_a_fixed_point(pressed, pitch, yaw):
    tokens = CODEC.encode(make_action(pressed, camera=(pitch, yaw)))
    quantised = CODEC.decode(tokens)
    assert CODEC.encode(quantised) == tokens
    assert all(abs(c) <= 10 for c in quantised["camera"])


OPENHA_CODEC = RawTokenCodec.for_profile(OPENHA)


def test_openha_inventory_is_exclusive_when_encoding():
    action = make_action(["inventory", "forward"], camera=(0, 2.85))
    # VPT's joint action space: the action encodes as the null action.
    assert OPENHA_CODEC.encode(action) == rst(178) + rst(219) + rst(240) + rst(179)
    # Ours keeps everything, inventory last (the group order of BUTTON_GROUPS).
    assert RawTokenCodec.for_profile(CROSSAGENT).encode(action) == rst(178) + rst(191) + rst(177) + rst(219) + rst(246) + rst(179)


def test_openha_inventory_token_drops_other_buttons_when_decoding():
    tokens = rst(178) + rst(177) + rst(191) + rst(204) + rst(219) + rst(246) + rst(179)
    assert pressed_buttons(OPENHA_CODEC.decode(tokens)) == ("inventory",)
    assert OPENHA_CODEC.decode(tokens)["camera"] == [0.0, pytest.approx(2.607, abs=1e-3)]
    assert pressed_buttons(CODEC.decode(tokens)) == ("forward", "attack", "inventory")
    # Without inventory the profiles agree.
    plain = make_action(["jump", "use"], camera=(-1.19, 0))
    assert OPENHA_CODEC.encode(plain) == CODEC.encode(plain)


def test_a_model_familys_table_from_json(tmp_path):
    # A made-up table in the style of a family without reserved tokens: rare characters.
    alphabet = iter(chr(0x4E00 + i) for i in range(200))
    table = {"begin": "<act>", "end": "</act>",
             "groups": {group: [next(alphabet) for _ in range(size)] for group, size in
                        [*((g, len(o)) for g, o in BUTTON_GROUPS.items()), ("camera", 2), ("pitch", 21), ("yaw", 21)]}}
    path = tmp_path / "table.json"
    path.write_text(json.dumps(table, ensure_ascii=False))
    vocabulary = load_token_table(path)
    assert RawTokenVocabulary.from_json(vocabulary.to_json()) == vocabulary
    assert vocabulary.to_json()["groups"]["pitch"] == table["groups"]["pitch"]
    codec = RawTokenCodec.for_profile(OPENHA, vocabulary)
    action = make_action(["forward", "attack"], camera=(0, 2.85))
    fore_back, attack = table["groups"]["fore_back"][1], table["groups"]["attack"][1]
    pitch, yaw = table["groups"]["pitch"][10], table["groups"]["yaw"][16]
    assert codec.encode(action) == f"<act>{fore_back}{attack}{pitch}{yaw}</act>"
    assert pressed_buttons(codec.decode(codec.encode(action))) == ("forward", "attack")


def test_the_qwen2_vl_table_survives_json():
    vocabulary = reserved_token_vocabulary()
    assert RawTokenVocabulary.from_json(json.loads(json.dumps(vocabulary.to_json()))) == vocabulary
    assert vocabulary.to_json()["groups"]["hotbar"][:2] == [rst(180), rst(181)]


@pytest.mark.parametrize("content, problem", [
    ("{not json", "not valid JSON"),
    ('{"begin": "<a>", "end": "<b>"}', "needs begin, end and groups"),
    ('{"begin": "<a>", "end": "<b>", "groups": {"hotbar": ["x"]}}', "every value of every group"),
])
def test_bad_token_tables_name_the_file(tmp_path, content, problem):
    path = tmp_path / "table.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=problem) as error:
        load_token_table(path)
    assert str(path) in str(error.value)


@given(st.text())
def test_decoder_never_raises(text):
    assert isinstance(CODEC.decode(text), (dict, ParseError))
