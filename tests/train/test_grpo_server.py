"""GRPO rollouts from `crossagent serve` on 127.0.0.1, with replies constrained to the output format's grammar."""

from __future__ import annotations

import pytest

from crossagent.actions.chain import parse_reply
from crossagent.models.loading import load_model
from crossagent.models.output_grammar import follows_format
from crossagent.models.samplers import ServerSampler
from crossagent.models.serve import BackgroundServer, create_app
from crossagent.models.tokenizer import IM_END
from crossagent.tasks.suite import load_suite
from crossagent.train.grpo import train
from crossagent.train.rollouts import RolloutSettings, collect_rollouts, group_specs

from .conftest import tiny_config

TASKS = ("embodied.collect_wood.near.w0", "craft.place_table.kit.w45")
GROUP_SIZE = 2
MAX_TOKENS = 160  # room for any canonical reply (tests/models/test_constrained_decoding.py, ROOM)
OUTPUT_FORMAT = "mixed"


@pytest.fixture(scope="module")
def server(tiny_path):
    with BackgroundServer(create_app(*load_model(tiny_path), "tiny")) as running:  # port 0: a free port
        yield running


def test_rollouts_from_the_server_follow_the_format(server, tiny_path):
    tokenizer = load_model(tiny_path)[1].tokenizer
    sampler = ServerSampler(server.base_url, "tiny", tokenizer, temperature=1.0, max_tokens=MAX_TOKENS,
                            constrained=True)
    suite = load_suite()
    specs = group_specs([suite.task(task_id) for task_id in TASKS], GROUP_SIZE, first_trial=0)
    batch = collect_rollouts(specs, sampler, RolloutSettings(max_episode_steps=4, output_format=OUTPUT_FORMAT),
                             seed=0)
    sampler.close()

    assert [(e.spec.group, e.spec.member) for e in batch.episodes] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert len(batch.turns) == batch.stats.replies >= len(specs)
    end = tokenizer.convert_tokens_to_ids(IM_END)
    for episode in batch.episodes:
        assert 1 <= len(episode.turns) == episode.result.extra["calls"] and episode.result.steps <= 4
        assert episode.result.extra["unparseable_replies"] == 0
        for turn in episode.turns:
            assert follows_format(parse_reply(turn.reply), OUTPUT_FORMAT), turn.reply
            assert not turn.unparseable
            # Re-tokenised, and ended inside max_tokens: the grammar finished every reply.
            assert turn.token_ids == (*tokenizer.encode(turn.reply, add_special_tokens=False), end)


def test_grpo_trains_an_iteration_on_server_rollouts(server, tiny_path, tmp_path):
    config = tiny_config(tiny_path, tmp_path / "run", updates=1, rollout_server=server.base_url,
                         served_model="tiny", max_new_tokens=MAX_TOKENS, max_episode_steps=4)
    assert config.constrained  # the default
    result = train(config)
    metrics = result.history[0]
    assert metrics["episodes"] == 4 and metrics["turns"] >= 4 and metrics["invalid_reply_rate"] == 0
    assert metrics["executed_invalid"] == 0 and metrics["entropy"] > 0
