"""`crossagent eval-model`: a local checkpoint on the benchmark, in slow, fast and dynamic modes.

Episodes run side by side in this process (bench.episode_loop: one batched generate per round for
all waiting episodes); each finished episode is stored at once, so a re-run resumes. Stored
episodes are keyed by a fingerprint of the evaluation (the checkpoint's content hash and every
setting that changes episodes), so another checkpoint or temperature under the same name is
evaluated again, never mixed in. This is how SFT and GRPO checkpoints are evaluated (`--suite
heldout`: the tasks GRPO never trains on). Replies are held to the output format's grammar
(constrained decoding, models.output_grammar) unless `--no-constrained`.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from crossagent.agents.level_agent import MODES, REQUERY_EVERY, LevelAgent
from crossagent.agents.model_policy import ModelPolicy
from crossagent.arguments import output_dir, positive_int
from crossagent.bench.episode import Episode, make_env
from crossagent.bench.episode_loop import Finished, LoopStats, run_episodes
from crossagent.bench.metrics import Summary, summaries_from_store
from crossagent.bench.report import format_table, write_report
from crossagent.bench.results_store import RESULTS_FILE, ResultsStore
from crossagent.actions.levels import DECODED_LEVELS
from crossagent.executors.registry import DEFAULT_CHECKPOINTS, KINDS, LEARNED_LEVELS, SCRIPTED, Executors
from crossagent.fingerprint import directory_hash
from crossagent.folder_lock import writes_folder
from crossagent.models.generation import GenerationSettings
from crossagent.models.loading import load_model
from crossagent.models.prompts import KNOWN_FORMATS, LEVELS_OF_FORMAT, OBSERVES, PROMPT_STYLES, check_prompt_style
from crossagent.models.samplers import LocalSampler
from crossagent.models.threads import add_threads_option, use_threads
from crossagent.tasks.splits import heldout_tasks
from crossagent.tasks.suite import load_suite
from crossagent.tasks.task import Task

SPEED_FILE = "speed.json"
# CrossAgent evaluates at temperature 0.4; greedy decoding of the tiny model always picks `Action:`.
EVAL_SAMPLING = GenerationSettings(max_new_tokens=32, do_sample=True, temperature=0.4, seed=0)
HELDOUT = "heldout"
# Slow mode executes the `Action:` line, so a constrained reply of a format that picks its chain ends there.
SLOW_MODE_LEVEL = {"slow": "raw"}


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("eval-model", help="benchmark a local model checkpoint in slow/fast/dynamic modes")
    parser.add_argument("--model", required=True, help="local checkpoint directory")
    parser.add_argument("--name", help="agent name in the results (default: the directory name)")
    parser.add_argument("--format", default="mixed", choices=KNOWN_FORMATS, help="output format (system prompt)")
    parser.add_argument("--modes", default="slow,fast,dynamic", help="comma-separated modes")
    parser.add_argument("--suite", default="mini",
                        help=f"'mini' (default), '{HELDOUT}' (tasks GRPO never trains on), 'full', a category, "
                             "or comma-separated task ids")
    parser.add_argument("--suite-file", help="a suite JSON file (default: the packaged suite)")
    parser.add_argument("--trials", type=positive_int, default=3)
    parser.add_argument("--slots", type=int, default=16, help="episodes run side by side (the generate batch)")
    parser.add_argument("--requery-every", type=positive_int, default=REQUERY_EVERY, help="fast/dynamic: re-query after k steps")
    parser.add_argument("--history", type=int, default=3, help="turns of history in the prompt")
    parser.add_argument("--observe", default="image", choices=OBSERVES,
                        help="what the model reads: the image, the text view, or both (as in its training data)")
    parser.add_argument("--prompt-style", default="full", choices=PROMPT_STYLES,
                        help="the prompt style the model was trained with: full (system prompt) or compact")
    parser.add_argument("--temperature", type=float, default=0.4,
                        help="sampling temperature (CrossAgent evaluates at 0.4); 0: greedy")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="as GRPO's default, so its replies are not cut")
    parser.add_argument("--constrained", action=argparse.BooleanOptionalAction, default=True,
                        help="hold every reply to the output format's grammar, so it always parses (default: on)")
    parser.add_argument("--executors", choices=KINDS, default="scripted",
                        help="what runs the upper levels' replies in fast and dynamic modes (default: scripted)")
    parser.add_argument("--executors-dir", type=Path, default=DEFAULT_CHECKPOINTS,
                        help=f"learned executors' checkpoints, one folder per level (default: {DEFAULT_CHECKPOINTS})")
    parser.add_argument("--out", type=output_dir, required=True)
    add_threads_option(parser)
    parser.set_defaults(run=run_eval_model)


def stored_name(name: str, mode: str) -> str:
    """The agent name a model's episodes in `mode` are stored under."""
    return f"{name}@{mode}"


@dataclass(frozen=True)
class ModelEvaluation:
    """One evaluation of a model checkpoint: every setting that changes its episodes, and the slots."""

    model: str  # local checkpoint directory
    name: str  # results are stored as NAME@MODE
    output_format: str = "mixed"  # the system prompt (models.prompts)
    modes: tuple[str, ...] = MODES
    trials: int = 3
    history: int = 3  # turns of history in the prompt
    observe: str = "image"  # what the model reads: image, text or both (as in its training data)
    requery_every: int = REQUERY_EVERY  # fast/dynamic: re-query after k steps
    sampling: GenerationSettings = EVAL_SAMPLING
    prompt_style: str = "full"  # models.prompts.PROMPT_STYLES, as in the model's training data
    slots: int = 16  # episodes side by side (the generate batch); changes the speed, never the episodes
    constrained: bool = True  # replies held to the output format's grammar (models.output_grammar)
    executors: Executors = SCRIPTED  # what runs the upper levels' replies (executors.registry)

    def __post_init__(self) -> None:
        for mode in self.modes:
            if mode not in MODES:
                raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        if self.observe not in OBSERVES:
            raise ValueError(f"observe {self.observe!r} is not one of {', '.join(OBSERVES)}")
        check_prompt_style(self.prompt_style)

    def agent_settings(self, mode: str, checkpoint_hash: str) -> dict:
        """What the stored episodes of `mode` are keyed by."""
        settings = asdict(self)
        for speed_only in ("model", "name", "modes", "trials", "slots"):
            settings.pop(speed_only)
        settings.pop("executors")  # learned ones are keyed by content; scripted adds nothing (older stores stay valid)
        if self.executors.learned:
            settings["executors"] = {level: directory_hash(Path(self.executors.checkpoints) / level)
                                     for level in LEARNED_LEVELS}
        for level in decoded_levels(self.output_format):  # the codebook the format's codes mean something in
            settings[level] = directory_hash(Path(self.executors.checkpoints) / level)
        return {"checkpoint": checkpoint_hash, "mode": mode, **settings}


@writes_folder(lambda call: call["out"])
def evaluate_model(evaluation: ModelEvaluation, tasks, suite_name: str, mini_ids, out: Path,
                   progress: bool = True) -> dict[str, LoopStats]:
    """Run every missing (task, trial) episode per mode; returns the speed of each mode's run."""
    model, processor = load_model(evaluation.model)
    sampler = LocalSampler(model, processor, evaluation.sampling, evaluation.constrained)
    checkpoint = directory_hash(evaluation.model)
    use_image, use_text = OBSERVES[evaluation.observe]
    out.mkdir(parents=True, exist_ok=True)
    speeds = {}
    with ResultsStore(out / RESULTS_FILE) as store:
        store.set_mini_ids(suite_name, tuple(mini_ids))
        for mode in evaluation.modes:
            agent_name = stored_name(evaluation.name, mode)
            store.begin(agent_name, suite_name, evaluation.agent_settings(mode, checkpoint), tasks)
            done = store.done_keys(agent_name, suite_name)
            episodes = [(t, trial) for t in tasks for trial in range(evaluation.trials) if (t.id, trial) not in done]

            def make_episode(index: int, task: Task, trial: int, mode: str = mode) -> Episode:
                policy = ModelPolicy(evaluation.output_format, evaluation.history, use_image, use_text,
                                     name=evaluation.name, seed=evaluation.sampling.seed or 0,
                                     prompt_style=evaluation.prompt_style, final_level=SLOW_MODE_LEVEL.get(mode))
                agent = LevelAgent(policy, mode=mode, requery_every=None if mode == "slow" else evaluation.requery_every,
                                   executors=evaluation.executors)
                return Episode(make_env(agent, agent.image_size), agent, task, trial)

            def keep(finished: Finished, agent_name: str = agent_name) -> None:
                store.add(finished.result, agent_name, suite_name, finished.error)

            speeds[mode] = run_episodes(episodes, make_episode, keep, evaluation.slots, sampler,
                                        progress=progress and agent_name)
    return speeds


def run_eval_model(args: argparse.Namespace) -> int:
    use_threads(args.threads)
    suite = load_suite(args.suite_file)
    tasks = heldout_tasks(suite) if args.suite == HELDOUT else suite.select(args.suite)
    model = Path(args.model)
    executors = Executors(args.executors, args.executors_dir)
    for level in (*(LEARNED_LEVELS if executors.learned else ()), *decoded_levels(args.format)):
        executors.execute_fn(level)  # a missing checkpoint fails here, before any episode
    # A GRPO checkpoint's weights sit in checkpoint-N/model: name the results after the checkpoint.
    name = args.name or executors.agent_name(model.parent.name if model.name == "model" else model.name)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    sampling = GenerationSettings(max_new_tokens=args.max_new_tokens, do_sample=args.temperature > 0,
                                  temperature=args.temperature or 1.0, seed=0 if args.temperature > 0 else None)
    evaluation = ModelEvaluation(args.model, name, args.format, tuple(modes), args.trials, args.history, args.observe,
                                 args.requery_every, sampling, prompt_style=args.prompt_style, slots=args.slots,
                                 constrained=args.constrained, executors=executors)
    speeds = evaluate_model(evaluation, tasks, suite.name, suite.mini_ids, args.out)
    summaries = model_summaries(args.out, suite.name, {(t.id, trial) for t in tasks for trial in range(args.trials)})
    write_report(summaries, args.out)
    (args.out / SPEED_FILE).write_text(json.dumps({mode: vars(s) for mode, s in speeds.items()}, indent=1))
    print(format_table(summaries))
    for mode, speed in speeds.items():
        print(f"{mode}: {speed.episodes} episodes, {speed.steps_per_second:.1f} env steps/s, "
              f"{speed.tokens_per_second:.1f} generated tokens/s")
    return 0


def decoded_levels(output_format: str) -> tuple[str, ...]:
    """The format's levels that a learned decoder runs (the latent level's codebook)."""
    return tuple(level for level in LEVELS_OF_FORMAT[output_format] if level in DECODED_LEVELS)


def model_summaries(out: Path, suite_name: str, keys) -> list[Summary]:
    with ResultsStore(out / RESULTS_FILE) as store:
        return summaries_from_store(store, {suite_name}, keys)
