"""ModelPolicy: the ReplyPolicy protocol over the tiny model, its history, seeds, batched replies, turns."""

import pytest

from crossagent.actions.chain import parse_reply
from crossagent.agents.level_agent import LevelAgent
from crossagent.agents.model_policy import STREAMS, ChatEpisode, ModelPolicy, reply_seed
from crossagent.bench.episode import make_env
from crossagent.bench.episode_loop import run_episode
from crossagent.models.generation import GenerationSettings
from crossagent.models.reply_request import Sample
from crossagent.models.samplers import LocalSampler

from .conftest import observation, task

SETTINGS = GenerationSettings(max_new_tokens=6)


def policy(**kwargs) -> ModelPolicy:
    made = ModelPolicy(**kwargs)
    made.reset(task(), seed=0)
    return made


def ask(made: ModelPolicy, obs, sampler) -> tuple[str, object]:
    """One reply, answered by `sampler` as the episode loop would: (reply, its request)."""
    decision = made.reply(obs, None)
    request = next(decision)
    with pytest.raises(StopIteration) as returned:
        decision.send(sampler.sample([request])[0])
    return returned.value.value, request


class RecordingSampler:
    """Replies from a script, in order; records every request's seed."""

    def __init__(self, *replies: str):
        self.replies = list(replies)
        self.seeds: list[int] = []

    def sample(self, requests):
        self.seeds += [request.seed for request in requests]
        return [Sample(self.replies.pop(0), (5, 6)) for _ in requests]


def user_turns(messages):
    return [m for m in messages if m["role"] == "user"]


def test_reply_is_a_string_and_the_policy_sees_no_state(tiny):
    made = policy(output_format="raw")
    assert made.uses_privileged_state is False and made.needs_image and not made.needs_text
    reply, _ = ask(made, observation(0), LocalSampler(*tiny, SETTINGS))
    assert isinstance(reply, str)
    assert made.name == "model:raw"


def test_history_keeps_the_last_h_turns(tiny):
    made = policy(history_length=2)
    sampler = LocalSampler(*tiny, SETTINGS)
    replies = [ask(made, observation(i), sampler)[0] for i in range(5)]
    assert [turn.reply for turn in made.chat.history] == replies[-2:]
    _, request = ask(made, observation(5), sampler)
    messages, images = request.chat
    assert len(user_turns(messages)) == 3 and len(images) == 3  # two past turns and the current one
    assert [m["content"][0]["text"] for m in messages if m["role"] == "assistant"] == replies[-2:]
    assert (images[-1] == observation(5).image).all()
    assert user_turns(messages)[0]["content"][0]["text"] == "Task: Collect a piece of wood."


def test_reset_forgets_the_episode():
    made = policy()
    ask(made, observation(0), RecordingSampler("Action: noop"))
    made.reset(task("Drink water."), seed=1)
    _, request = ask(made, observation(1), RecordingSampler("Action: noop"))
    assert len(request.images) == 1 and "Drink water." in user_turns(request.messages)[0]["content"][0]["text"]


def test_text_only_policy_sends_no_image():
    made = policy(use_image=False, use_text=True)
    assert made.needs_text and not made.needs_image
    _, request = ask(made, observation(0, text="view: T.."), RecordingSampler("Action: noop"))
    assert request.images == [] and user_turns(request.messages)[0]["content"][-1] == {"type": "text",
                                                                                       "text": "view: T.."}


def test_batched_replies_equal_one_at_a_time(tiny):
    """Sampling at temperature 1: one sampler call for three policies' requests gives each the reply it
    gets alone, because each request draws from its own seed."""
    sampler = LocalSampler(*tiny, GenerationSettings(max_new_tokens=6, do_sample=True, temperature=1.0))
    alone = [policy(output_format=f) for f in ("raw", "mixed", "skill")]
    together = [policy(output_format=f) for f in ("raw", "mixed", "skill")]
    for step in range(2):
        observations = [observation(10 * step + i) for i in range(3)]
        expected = [ask(p, o, sampler)[0] for p, o in zip(alone, observations)]
        decisions = [p.reply(o, None) for p, o in zip(together, observations)]
        requests = [next(decision) for decision in decisions]
        replies = []
        for decision, sample in zip(decisions, sampler.sample(requests)):
            with pytest.raises(StopIteration) as returned:
                decision.send(sample)
            replies.append(returned.value.value)
        assert replies == expected
    assert [turn.reply for turn in together[1].chat.history] == [turn.reply for turn in alone[1].chat.history]


def test_seeds_and_turns_are_recorded():
    sampler = RecordingSampler("Action: move_left", "Action: noop", "I think I will wait.")
    made = ModelPolicy("raw", keep_turns=True, seed=7)
    made.reset(task(), seed=3)
    first, request = ask(made, observation(0), sampler)
    assert first == "Action: move_left"
    assert ask(made, observation(1), sampler)[0] == "Action: noop"
    assert ask(made, observation(2), sampler)[0] == "I think I will wait."
    assert sampler.seeds == [reply_seed(7, 3, call, 0) for call in range(3)]  # run seed, episode seed, call index
    assert len(set(sampler.seeds)) == 3 and all(0 <= seed < 2**31 for seed in sampler.seeds)
    member = ModelPolicy("raw", seed=7, stream=2)  # a GRPO group's third member
    member.reset(task(), seed=3)
    ask(member, observation(0), sampler := RecordingSampler("Action: noop"))
    assert sampler.seeds == [reply_seed(7, 3, 0, 2)] and sampler.seeds[0] != reply_seed(7, 3, 0, 0)
    turn = made.turns[0]
    assert (turn.messages, turn.images, turn.reply, turn.token_ids) == (request.messages, request.images,
                                                                         "Action: move_left", (5, 6))
    assert [turn.unparseable for turn in made.turns] == [False, False, True] == [
        parse_reply(turn.reply).error is not None for turn in made.turns]
    assert made.unparseable_replies == 1
    made.reset(task(), seed=4)
    assert made.turns == [] and made.unparseable_replies == 0


def test_turns_are_kept_only_when_asked():
    made = policy(output_format="mixed")
    ask(made, observation(0), RecordingSampler("Motion: dance"))
    assert made.turns == [] and made.unparseable_replies == 1


def test_streams_are_bounded():
    with pytest.raises(ValueError, match="stream"):
        ModelPolicy("raw", stream=STREAMS)


def test_level_agent_runs_the_policy_in_crafter(tiny):
    """The untrained model's replies are noise: the episode runs to its budget."""
    agent = LevelAgent(ModelPolicy(), mode="dynamic")
    run_episode(make_env(agent), agent, task(), 0, sampler=LocalSampler(*tiny, SETTINGS))
    stats = agent.episode_stats()
    assert stats["calls"] >= 1 and stats["steps"] == task().budget


def test_chat_episode_misuse():
    with pytest.raises(ValueError, match="unknown output format"):
        ChatEpisode("haiku")
    with pytest.raises(ValueError, match="image, the text, or both"):
        ChatEpisode("raw", use_image=False, use_text=False)
    chat = ChatEpisode("raw")
    with pytest.raises(RuntimeError, match="before reset"):
        chat.turn(observation(0))
