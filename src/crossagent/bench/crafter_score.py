"""The standard Crafter score, measured with the benchmark's runner and results store.

Episodes are Crafter's default ones: the generated world of seed i (i = 0..N-1), no start
edits, up to 10000 steps or death. Each runs as a `Task` whose success predicate needs all
22 achievements, so the ordinary episode loop serves and the episode never stops early.
Per achievement, the success rate s_i (%) is the share of episodes that unlocked it at least
once; the score is exp(mean_i ln(1 + s_i)) - 1, in %, as in Hafner (2021).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from crossagent.bench.results_store import RESULTS_FILE, EpisodeRow, ResultsStore  # noqa: E402
from crossagent.bench.runner import run_benchmark  # noqa: E402
from crossagent.envs.crafter_env import ACHIEVEMENTS  # noqa: E402
from crossagent.envs.start_state import StartState  # noqa: E402
from crossagent.tasks.predicates import Achieve, AllOf  # noqa: E402
from crossagent.tasks.task import Task  # noqa: E402

CRAFTER_SUITE = "crafter-default"
# All 22 achievements; the order only matters to agents that pursue the parts in turn (the expert).
TECH_TREE_ORDER = (
    "collect_wood", "place_table", "make_wood_pickaxe", "make_wood_sword", "collect_drink", "collect_sapling",
    "place_plant", "collect_stone", "place_stone", "make_stone_pickaxe", "make_stone_sword", "eat_cow",
    "collect_coal", "place_furnace", "collect_iron", "make_iron_pickaxe", "make_iron_sword", "defeat_zombie",
    "collect_diamond", "wake_up", "defeat_skeleton", "eat_plant",
)
EPISODE_LENGTH = 10000
TASK_PREFIX = "crafter-seed-"
# Published scores (%), Hafner 2021 and Hafner et al. 2023.
REFERENCE_SCORES = {"random": 1.6, "PPO": 4.6, "DreamerV3": 14.5, "human experts": 50.5}
SCORE_FILES = {"json": "crafter_score.json", "chart": "crafter_score.png"}


@dataclass(frozen=True)
class CrafterScore:
    agent: str
    episodes: int  # episodes that count (those that did not raise)
    errors: int
    score: float  # %
    rates: dict[str, float]  # % of episodes that unlocked each achievement
    mean_length: float
    mean_return: float

    def to_dict(self) -> dict:
        return {**asdict(self), "references": REFERENCE_SCORES}


def default_task(world_seed: int) -> Task:
    return Task(
        id=f"{TASK_PREFIX}{world_seed}",
        category="embodied",
        instruction="Survive and unlock as many achievements as you can.",
        paraphrases=("Play Crafter and unlock every achievement you can.", "Stay alive and unlock achievements."),
        world_seed=world_seed,
        start=StartState(),
        budget=EPISODE_LENGTH,
        success=AllOf(tuple(Achieve(name) for name in TECH_TREE_ORDER)),
    )


def default_task_by_id(task_id: str) -> Task:
    seed = task_id.removeprefix(TASK_PREFIX)
    if not task_id.startswith(TASK_PREFIX) or not seed.isdigit():
        raise KeyError(f"{task_id!r} is not a Crafter-score episode id ({TASK_PREFIX}<world seed>)")
    return default_task(int(seed))


def achievement_rates(unlocked: Sequence[Collection[str]]) -> dict[str, float]:
    """Per achievement, the % of episodes (each given by its unlocked names) that unlocked it."""
    if not unlocked:
        raise ValueError("no episodes to score")
    return {name: 100.0 * sum(name in names for names in unlocked) / len(unlocked) for name in ACHIEVEMENTS}


def crafter_score(rates: Iterable[float]) -> float:
    """exp(mean ln(1 + s_i)) - 1 of success rates s_i in %: a geometric mean that rewards rare achievements."""
    return float(np.exp(np.mean(np.log1p(np.asarray(list(rates), dtype=float)))) - 1.0)


def score_rows(rows: Sequence[EpisodeRow], agent: str) -> CrafterScore:
    """The score of stored episodes; episodes that raised are left out and counted."""
    ok = [row for row in rows if row.error is None]
    if not ok:
        raise ValueError(f"all {len(rows)} episodes of {agent!r} raised; their tracebacks are in the error column")
    rates = achievement_rates([row.unlocked for row in ok])
    return CrafterScore(agent=agent, episodes=len(ok), errors=len(rows) - len(ok), score=crafter_score(rates.values()),
                        rates=rates, mean_length=float(np.mean([row.steps for row in ok])),
                        mean_return=float(np.mean([row.episode_return for row in ok])))


def run_crafter_score(agent_name: str, episodes: int, workers: int, out_dir: str | Path,
                      progress: bool = True) -> CrafterScore:
    """Run (or resume) `episodes` default episodes into out_dir's results store and score them."""
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    tasks = [default_task(seed) for seed in range(episodes)]
    store_path = Path(out_dir) / RESULTS_FILE
    run_benchmark(agent_name, tasks, trials=1, workers=workers, store_path=store_path, suite_name=CRAFTER_SUITE,
                  progress=progress)
    wanted = {task.id for task in tasks}
    with ResultsStore(store_path) as store:
        rows = [row for row in store.episodes(agent_name, CRAFTER_SUITE) if row.task_id in wanted and row.trial == 0]
    return score_rows(rows, agent_name)


def format_score(result: CrafterScore) -> str:
    """The score next to the published references, then the per-achievement rates."""
    lines = [f"Crafter score ({result.episodes} episodes, {result.errors} errors, mean length "
             f"{result.mean_length:.0f}, mean return {result.mean_return:.2f})", ""]
    entries = sorted([(f"{result.agent} (this run)", result.score), *REFERENCE_SCORES.items()], key=lambda e: e[1])
    width = max(len(name) for name, _ in entries)
    lines += [f"  {name.ljust(width)}  {score:5.1f} %" for name, score in entries]
    lines += ["", "Success rate per achievement (%):"]
    lines += [f"  {name.ljust(22)} {rate:5.1f}" for name, rate in result.rates.items()]
    return "\n".join(lines)


def write_score(result: CrafterScore, out_dir: str | Path) -> dict[str, Path]:
    """Write crafter_score.json and crafter_score.png (per-achievement bars) into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / name for kind, name in SCORE_FILES.items()}
    paths["json"].write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    figure, axes = plt.subplots(figsize=(10, 4))
    bars = axes.bar(list(result.rates), list(result.rates.values()))
    axes.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    axes.set_ylabel("success rate (%)")
    axes.set_ylim(0, 105)
    axes.set_title(f"{result.agent}: Crafter score {result.score:.1f} % over {result.episodes} episodes")
    plt.setp(axes.get_xticklabels(), rotation=60, ha="right", rotation_mode="anchor", fontsize=8)
    figure.tight_layout()
    figure.savefig(paths["chart"], dpi=120)
    plt.close(figure)
    return paths
