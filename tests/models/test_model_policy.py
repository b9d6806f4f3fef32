"""ModelPolicy: the ReplyPolicy protocol over the tiny model, its history, batched (prepared) replies, turns."""

import pytest

from crossagent.actions.chain import parse_reply
from crossagent.agents.level_agent import LevelAgent
from crossagent.agents.model_policy import SEED_STRIDE, STREAMS, ChatEpisode, ModelPolicy, server_policy
from crossagent.bench.episode import make_env, run_episode
from crossagent.models.generation import GenerationSettings
from crossagent.models.samplers import LocalSampler, Sample

from .conftest import observation, task

SETTINGS = GenerationSettings(max_new_tokens=6)


def policy(tiny, **kwargs) -> ModelPolicy:
    made = ModelPolicy(LocalSampler(*tiny, SETTINGS), **kwargs)
    made.reset(task(), seed=0)
    return made


class RecordingSampler:
    """Replies from a script, in order; records every call's seed."""

    def __init__(self, *replies: str):
        self.replies = list(replies)
        self.seeds: list[int] = []

    def sample(self, requests, seed):
        self.seeds.append(seed)
        return [Sample(self.replies.pop(0), (5, 6)) for _ in requests]


def user_turns(messages):
    return [m for m in messages if m["role"] == "user"]


def test_reply_is_a_string_and_the_policy_sees_no_state(tiny):
    made = policy(tiny, output_format="raw")
    assert made.uses_privileged_state is False and made.needs_image and not made.needs_text
    assert isinstance(made.reply(observation(0), None), str)
    assert made.name == "model:raw"


def test_history_keeps_the_last_h_turns(tiny):
    made = policy(tiny, history_length=2)
    replies = [made.reply(observation(i), None) for i in range(5)]
    assert [turn.reply for turn in made.chat.history] == replies[-2:]
    messages, images = made.request(observation(5))
    assert len(user_turns(messages)) == 3 and len(images) == 3  # two past turns and the current one
    assert [m["content"][0]["text"] for m in messages if m["role"] == "assistant"] == replies[-2:]
    assert (images[-1] == observation(5).image).all()
    assert user_turns(messages)[0]["content"][0]["text"] == "Task: Collect a piece of wood."


def test_reset_forgets_the_episode(tiny):
    made = policy(tiny)
    made.reply(observation(0), None)
    made.reset(task("Drink water."), seed=1)
    messages, images = made.request(observation(1))
    assert len(images) == 1 and "Drink water." in user_turns(messages)[0]["content"][0]["text"]


def test_text_only_policy_sends_no_image(tiny):
    made = policy(tiny, use_image=False, use_text=True)
    assert made.needs_text and not made.needs_image
    messages, images = made.request(observation(0, text="view: T.."))
    assert images == [] and user_turns(messages)[0]["content"][-1] == {"type": "text", "text": "view: T.."}


def test_batched_replies_equal_one_at_a_time(tiny):
    """Greedy decoding: one sampler call for three policies' requests gives each the reply it gets alone."""
    alone = [policy(tiny, output_format=f) for f in ("raw", "mixed", "skill")]
    together = [policy(tiny, output_format=f) for f in ("raw", "mixed", "skill")]
    sampler = LocalSampler(*tiny, SETTINGS)
    for step in range(2):
        observations = [observation(10 * step + i) for i in range(3)]
        expected = [p.reply(o, None) for p, o in zip(alone, observations)]
        requests = [p.request(o) for p, o in zip(together, observations)]
        for p, sample in zip(together, sampler.sample(requests, seed=0)):
            p.answer(sample)
        assert [p.reply(o, None) for p, o in zip(together, observations)] == expected
    assert [turn.reply for turn in together[1].chat.history] == [turn.reply for turn in alone[1].chat.history]


def test_a_prepared_sample_is_the_next_reply_and_turns_are_recorded():
    sampler = RecordingSampler("Action: noop", "I think I will wait.")
    made = ModelPolicy(sampler, "raw", keep_turns=True)
    made.reset(task(), seed=3)
    messages, images = made.request(observation(0))
    made.answer(Sample("Action: move_left", (1, 2, 3)))
    assert made.reply(observation(0), None) == "Action: move_left" and sampler.seeds == []
    assert made.reply(observation(1), None) == "Action: noop"  # nothing prepared: the sampler alone
    assert made.reply(observation(2), None) == "I think I will wait."
    assert sampler.seeds == [(3 * SEED_STRIDE + call) * STREAMS for call in (1, 2)]  # episode seed, call index
    assert made.own_sampling.calls == 2 and made.own_sampling.generated_tokens == 4
    member = ModelPolicy(RecordingSampler("Action: noop"), "raw", stream=2)  # a GRPO group's third member
    member.reset(task(), seed=3)
    member.reply(observation(0), None)
    assert member.sampler.seeds == [3 * SEED_STRIDE * STREAMS + 2]
    first = made.turns[0]
    assert (first.messages, first.images, first.reply, first.token_ids) == (messages, images, "Action: move_left",
                                                                            (1, 2, 3))
    assert [turn.unparseable for turn in made.turns] == [False, False, True] == [
        parse_reply(turn.reply).error is not None for turn in made.turns]
    assert made.unparseable_replies == 1
    made.reset(task(), seed=4)
    assert made.turns == [] and made.unparseable_replies == 0 and made.own_sampling.calls == 0


def test_turns_are_kept_only_when_asked():
    made = ModelPolicy(RecordingSampler("Motion: dance"), "mixed")
    made.reset(task(), seed=0)
    made.reply(observation(0), None)
    assert made.turns == [] and made.unparseable_replies == 1


def test_answer_needs_a_request():
    made = ModelPolicy(RecordingSampler(), "raw")
    made.reset(task(), seed=0)
    with pytest.raises(RuntimeError, match="without a pending request"):
        made.answer(Sample("Action: noop", ()))


def test_level_agent_runs_the_policy_in_crafter(tiny):
    """The untrained model's replies are noise: the episode runs, and its steps are invalid no-ops."""
    agent = LevelAgent(ModelPolicy(LocalSampler(*tiny, SETTINGS)), mode="dynamic")
    run_episode(make_env(agent), agent, task(), 0)
    stats = agent.episode_stats()
    assert stats["calls"] >= 1 and stats["steps"] == task().budget


def test_server_policy_is_a_model_policy_named_after_the_served_model():
    made = server_policy("http://127.0.0.1:1/v1", "qwen", "skill", use_text=True, max_tokens=8)
    assert made.name == "openai:qwen:skill" and made.needs_text and made.sampler.max_tokens == 8
    assert made.sampler.url == "http://127.0.0.1:1/v1/chat/completions"


def test_chat_episode_misuse():
    with pytest.raises(ValueError, match="unknown output format"):
        ChatEpisode("haiku")
    with pytest.raises(ValueError, match="image, the text, or both"):
        ChatEpisode("raw", use_image=False, use_text=False)
    chat = ChatEpisode("raw")
    with pytest.raises(RuntimeError, match="before reset"):
        chat.request(observation(0))
    chat.reset("Collect wood.")
    with pytest.raises(RuntimeError, match="without a pending"):
        chat.accept("Action: noop")
