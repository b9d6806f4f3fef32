"""Every reply the SFT datasets teach, labelled from a real expert recording, is one its format's grammar
accepts: constrained decoding never forbids what the model was trained to write."""

import json

import pytest

from crossagent.data.builders import BuildConfig, build_examples
from crossagent.data.level_verification import verify_levels
from crossagent.data.recording import episodes_of, load_trajectories, read_manifest
from crossagent.models.constrained_decoding import grammar_compiler
from crossagent.models.output_grammar import output_grammar
from crossagent.models.prompts import OUTPUT_FORMATS
from crossagent.models.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def compiler():
    tokenizer = train_tokenizer()
    return grammar_compiler(tokenizer, len(tokenizer))


@pytest.mark.parametrize("output_format, mixed_levels", [*((name, "verified") for name in OUTPUT_FORMATS),
                                                          ("mixed", "random")])
def test_every_labelled_reply_is_accepted_by_its_formats_grammar(recording, compiler, output_format, mixed_levels):
    out, _ = recording
    episodes = episodes_of(load_trajectories(out), decode_images=True)
    image_size = read_manifest(out)["image_size"]
    levels = verify_levels(episodes, image_size)[0] if output_format == "mixed" and mixed_levels == "verified" else None
    examples, _ = build_examples(episodes, {output_format: 1.0}, BuildConfig(keep_noop=1.0, mixed_levels=mixed_levels),
                                 image_size, levels)
    replies = {json.loads(example["messages"])[-1]["content"][0]["text"] for example in examples}
    assert replies
    rejected = [reply for reply in replies if not compiler.accepts(output_grammar(output_format), reply)]
    assert not rejected
