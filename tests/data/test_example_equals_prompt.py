"""A training example and the prompt the evaluator builds for the same step are the same chat.

The dataset builder (data.builders) and the policy (agents.model_policy.ChatEpisode) both build
messages with models.prompts.build_messages; replaying a recorded episode through the policy's chat,
with the expert's replies as the model's, gives each kept step's example without its final reply. The
policy remembers the questions the evaluation asks (every step in slow mode; where an upper level's
executor stops or has run k steps in fast and dynamic modes), so the history is the same too.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from crossagent.agents.model_policy import ChatEpisode
from crossagent.data.builders import BuildConfig, _reply, asked_steps, build_examples, chain_of, step_replies
from crossagent.data.labelling import label_episode
from crossagent.data.recording import episodes_of, load_trajectories, read_manifest
from crossagent.envs.crafter_env import Observation
from crossagent.models.prompts import OBSERVES


@pytest.mark.parametrize("prompt_style", ["compact", "full"])
@pytest.mark.parametrize("observe, history", [("text", 1), ("both", 2), ("image", 0)])
@pytest.mark.parametrize("output_format, requery_every", [("mixed", 4), ("skill", 2), ("mixed", None), ("raw", 4)])
def test_each_example_is_the_prompt_the_policy_builds_for_its_step(recording, prompt_style, observe, history,
                                                                   output_format, requery_every):
    folder, _ = recording
    image_size = read_manifest(folder)["image_size"]
    use_image, use_text = OBSERVES[observe]
    # The prompts are the subject here, not the chains: random chains need no verified levels.
    config = BuildConfig(history=history, use_image=use_image, use_text=use_text, prompt_style=prompt_style,
                         mixed_levels="random", requery_every=requery_every)
    compared = 0
    for steps in episodes_of(load_trajectories(folder), decode_images=True):
        examples, _ = build_examples([steps], {output_format: 1.0}, config, image_size)
        by_step = {example["step"]: example for example in examples}
        labels = label_episode(steps, image_size)
        chat = ChatEpisode(output_format, history, use_image, use_text, prompt_style)
        chat.reset(steps[0].instruction)
        chains = [chain_of(output_format, step, config) for step in steps]
        asked = asked_steps(step_replies(steps, labels, chains), requery_every)
        for t, step in enumerate(steps):
            turn = chat.turn(Observation(np.asarray(step.image), step.text))
            messages, images = chat.prompt(turn)
            if step.step in by_step:
                example = by_step[step.step]
                assert json.loads(example["messages"])[:-1] == messages
                assert len(example["images"]) == len(images)
                assert all(np.array_equal(a, b) for a, b in zip(example["images"], images))
                compared += 1
            if asked[t]:
                chat.remember(turn, _reply(output_format, labels[t], step, config))
    assert compared > 0
