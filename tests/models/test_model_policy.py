"""ModelPolicy: the ReplyPolicy protocol over the tiny model, its history, and batched replies."""

import pytest

from crossagent.agents.level_agent import LevelAgent
from crossagent.agents.model_policy import SEED_STRIDE, ChatEpisode, ModelPolicy, reply_batch
from crossagent.bench.episode import make_env, run_episode
from crossagent.models.generation import GenerationSettings

from .conftest import observation, task

SETTINGS = GenerationSettings(max_new_tokens=6)


def policy(tiny, **kwargs) -> ModelPolicy:
    model, processor = tiny
    made = ModelPolicy(model, processor, settings=SETTINGS, **kwargs)
    made.reset(task(), seed=0)
    return made


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
    made = policy(tiny, needs_image=False, needs_text=True)
    messages, images = made.request(observation(0, text="view: T.."))
    assert images == [] and user_turns(messages)[0]["content"][-1] == {"type": "text", "text": "view: T.."}


def test_batched_replies_equal_one_at_a_time(tiny):
    alone = [policy(tiny, output_format=f) for f in ("raw", "mixed", "skill")]
    together = [policy(tiny, output_format=f) for f in ("raw", "mixed", "skill")]
    for step in range(2):
        observations = [observation(10 * step + i) for i in range(3)]
        expected = [p.reply(o, None) for p, o in zip(alone, observations)]
        assert reply_batch(together, observations) == expected
    assert [list(p.chat.history) for p in together][0][-1].reply == alone[0].chat.history[-1].reply


def test_level_agent_runs_the_policy_in_crafter(tiny):
    """The untrained model's replies are noise: the episode runs, and its steps are invalid no-ops."""
    agent = LevelAgent(ModelPolicy(*tiny, settings=SETTINGS), mode="dynamic")
    run_episode(make_env(agent), agent, task(), 0)
    stats = agent.episode_stats()
    assert stats["calls"] >= 1 and stats["steps"] == task().budget


def test_batch_needs_shared_settings(tiny):
    model, processor = tiny
    other = ModelPolicy(model, processor, settings=GenerationSettings(max_new_tokens=3))
    other.reset(task(), 0)
    with pytest.raises(ValueError, match="share one model"):
        reply_batch([policy(tiny), other], [observation(0), observation(1)])


def test_sampling_seed_follows_episode_and_call():
    class Stub(ModelPolicy):
        def __init__(self):
            self.settings = GenerationSettings(do_sample=True)
            self._seed, self._calls = 3, 2

    assert Stub().call_settings().seed == 3 * SEED_STRIDE + 2


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
