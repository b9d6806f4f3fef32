"""The latent output format (LatentHA, fast mode): labelled by the codebook's encoder, opt-in; the default
formats, their prompts and grammars, the all-in-one mix and the tokenizer stay exactly as before."""

from __future__ import annotations

import hashlib
import json

import pytest
from datasets import load_from_disk

from crossagent.actions.chain import parse_reply
from crossagent.actions.latent import Latent
from crossagent.cli import main
from crossagent.data.builders import ALL_IN_ONE_WEIGHTS, BuildConfig, build_examples, latent_codes
from crossagent.data.labelling import latent_labels
from crossagent.executors.latent_model import load_latent
from crossagent.models.output_grammar import follows_format, output_grammar
from crossagent.models.prompts import (KNOWN_FORMATS, LEVELS_OF_FORMAT, OUTPUT_FORMATS, system_prompt, task_line)
from crossagent.models.tokenizer import LATENT_TOKENS, train_tokenizer

CONFIG = BuildConfig(history=2, use_image=False, use_text=True, prompt_style="compact", keep_noop=1.0)


def test_latent_examples_carry_the_encoders_code_of_each_steps_chunk(episodes, checkpoints):
    codes = latent_codes(episodes, checkpoints / "latent")
    examples, report = build_examples(episodes, {"latent": 1.0}, CONFIG, 64, latent=codes)
    assert report.kept == len(examples) == sum(len(e) for e in episodes)
    model = load_latent(checkpoints / "latent")
    expected = [label for steps in episodes for label in latent_labels(steps, model)]
    replies = [parse_reply(json.loads(example["messages"])[-1]["content"][0]["text"]) for example in examples]
    assert [reply.action("latent") for reply in replies] == expected
    assert all(follows_format(reply, "latent") and example["levels"] == ["latent"]
               for reply, example in zip(replies, examples))
    assert all(isinstance(label, Latent) for label in expected)


def test_the_latent_format_needs_the_codes(episodes):
    with pytest.raises(ValueError, match="latent codebook"):
        build_examples(episodes, {"latent": 1.0}, CONFIG, 64)


def test_data_label_writes_the_latent_format_given_the_checkpoint(recording, checkpoints, tmp_path):
    assert main(["data", "label", "--data", str(recording), "--out", str(tmp_path / "labelled"), "--formats", "latent",
                 "--mix", "none", "--latent", str(checkpoints / "latent")]) == 0
    dataset = load_from_disk(str(tmp_path / "labelled" / "latent"))
    assert len(dataset) > 0 and set(dataset["format"]) == {"latent"}
    assert "Latent: <|latent_" in system_prompt("latent")


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def test_the_default_formats_prompts_grammars_mix_and_tokenizer_are_as_before_latent():
    """Digests taken before the latent level existed (the same code on main): latent is only an addition."""
    assert OUTPUT_FORMATS == ("raw", "motion", "grounding", "skill", "motion_coa", "grounding_coa", "mixed")
    assert KNOWN_FORMATS == (*OUTPUT_FORMATS, "latent") and set(ALL_IN_ONE_WEIGHTS) == set(OUTPUT_FORMATS)
    grammars = [output_grammar(f).text for f in OUTPUT_FORMATS] + [output_grammar("mixed", "raw").text]
    assert digest(grammars) == "e8647f839ddf2d52"
    prompts = ([system_prompt(f, t, i) for f in OUTPUT_FORMATS for t in (False, True) for i in (False, True)]
               + [task_line(f, "Collect wood.", s) for f in OUTPUT_FORMATS for s in ("compact", "full")])
    assert digest(prompts) == "7989677c0af8a81c"
    assert digest({f: LEVELS_OF_FORMAT[f] for f in OUTPUT_FORMATS}) == "c7f72e00177cade8"
    assert digest(ALL_IN_ONE_WEIGHTS) == "1bb6187ef185dc5f"
    vocabulary = train_tokenizer().get_vocab()  # the tiny model's: its size sets the embedding and so every weight
    assert digest(sorted(vocabulary.items())) == "855ae5a48e7433d3"
    assert not set(LATENT_TOKENS) & set(vocabulary)


def test_a_tiny_model_with_the_code_tokens_sft_s_on_the_latent_format_and_writes_codes(recording, checkpoints,
                                                                                        tmp_path):
    import torch

    from crossagent.models.generation import GenerationSettings, generate_batch
    from crossagent.models.loading import load_model
    from crossagent.models.prompts import build_messages
    from crossagent.models.tiny_vlm import create_tiny_model
    from crossagent.train.sft import SFTSettings, run_sft

    torch.set_num_threads(1)
    assert main(["data", "label", "--data", str(recording), "--out", str(tmp_path / "labelled"), "--formats", "latent",
                 "--mix", "none", "--latent", str(checkpoints / "latent"), "--prompt-style", "compact",
                 "--observe", "text", "--history", "1"]) == 0
    model_path = create_tiny_model(tmp_path / "init", latent_codes=True)
    result = run_sft(SFTSettings(model=str(model_path), dataset=str(tmp_path / "labelled" / "latent"),
                                 output_dir=str(tmp_path / "sft"), max_steps=3, batch_size=4, save_steps=100,
                                 logging_steps=1, warmup_steps=0, progress=False))
    assert result.steps == 3
    model, processor = load_model(result.output_dir)
    messages, images = build_messages("latent", "Collect wood.", [], None, "view: ...", prompt_style="compact")
    [completion] = generate_batch(model, processor, [(messages, images)], GenerationSettings(max_new_tokens=8),
                                  grammars=[output_grammar("latent")])
    assert isinstance(parse_reply(completion.reply).action("latent"), Latent), completion.reply


def test_a_latent_format_evaluation_is_keyed_by_the_codebook(checkpoints):
    from crossagent.bench.model_eval import ModelEvaluation
    from crossagent.executors.registry import Executors

    latent = ModelEvaluation("model", "m", output_format="latent", executors=Executors("scripted", checkpoints))
    assert set(latent.agent_settings("fast", "c")) >= {"latent"}
    mixed = ModelEvaluation("model", "m", executors=Executors("scripted", checkpoints))
    assert "latent" not in mixed.agent_settings("fast", "c")  # other formats are keyed as before
