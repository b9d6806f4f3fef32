"""Constrained decoding against free decoding, side by side in one run with the untrained tiny model.

The same requests (every output format, 16 rows a batch, as eval-model's slots) are sampled at
temperature 1 with and without each format's grammar. Reported per run: the share of replies
that do not parse (`parse_reply(reply).error`), that do not follow their format (wrong or missing
levels, a bad line), that were cut at max_new_tokens, and the speed in replies/s and generated
tokens/s, and the constraint's own milliseconds per decoding step of a batch (reading each row's
token, computing its mask, masking): short constrained replies make fewer decoding steps share a
batch's prompt pass, so seconds per step would not show it. Grammars are compiled in a warm-up.

Run: `python benchmarks/constrained_decoding.py` (a minute or two on 2 cores); writes
benchmarks/results/constrained_decoding.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from crossagent.actions.chain import parse_reply  # noqa: E402
from crossagent.models.constrained_decoding import GrammarConstraint  # noqa: E402
from crossagent.models.generation import GenerationSettings, generate_batch  # noqa: E402
from crossagent.models.loading import load_model  # noqa: E402
from crossagent.models.output_grammar import follows_format, output_grammar  # noqa: E402
from crossagent.models.prompts import OUTPUT_FORMATS, build_messages  # noqa: E402
from crossagent.models.tiny_vlm import create_tiny_model  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "constrained_decoding.md"
ROWS_PER_FORMAT = 32
BATCH = 16
SAMPLING = GenerationSettings(max_new_tokens=64, do_sample=True, temperature=1.0)  # eval-model's token limit


def requests() -> list[tuple[str, tuple]]:
    rng = np.random.default_rng(0)
    return [(output_format, build_messages(output_format, "Collect wood.", [],
                                           rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)))
            for _ in range(ROWS_PER_FORMAT) for output_format in OUTPUT_FORMATS]


class TimedConstraint:
    """Adds up the seconds and calls of GrammarConstraint.__call__ while installed."""

    def __init__(self):
        self.seconds, self.calls, self.call = 0.0, 0, GrammarConstraint.__call__

    def __enter__(self) -> "TimedConstraint":
        def timed(constraint, input_ids, scores):
            started = time.perf_counter()
            masked = self.call(constraint, input_ids, scores)
            self.seconds += time.perf_counter() - started
            self.calls += 1
            return masked
        GrammarConstraint.__call__ = timed
        return self

    def __exit__(self, *exc) -> None:
        GrammarConstraint.__call__ = self.call


def run(model, processor, rows, constrained: bool) -> dict:
    unparseable = off_format = cut = tokens = 0
    started = time.perf_counter()
    with TimedConstraint() as constraint:
        for start in range(0, len(rows), BATCH):
            batch = rows[start:start + BATCH]
            grammars = [output_grammar(output_format) for output_format, _ in batch] if constrained else None
            completions = generate_batch(model, processor, [chat for _, chat in batch], SAMPLING,
                                         list(range(start, start + len(batch))), grammars=grammars)
            for (output_format, _), completion in zip(batch, completions):
                reply = parse_reply(completion.reply)
                unparseable += reply.error is not None
                off_format += not follows_format(reply, output_format)
                cut += not completion.stopped
                tokens += completion.completion_tokens
    seconds = time.perf_counter() - started
    return {"unparseable": unparseable / len(rows), "off_format": off_format / len(rows), "cut": cut / len(rows),
            "replies_per_s": len(rows) / seconds, "tokens_per_s": tokens / seconds, "tokens": tokens / len(rows),
            "constraint_ms": 1000 * constraint.seconds / max(constraint.calls, 1)}


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        model, processor = load_model(create_tiny_model(Path(scratch) / "model"))
        rows = requests()
        run(model, processor, rows[:len(OUTPUT_FORMATS)], constrained=True)  # warm-up: compiles every grammar
        results = {"free": run(model, processor, rows, constrained=False),
                   "constrained": run(model, processor, rows, constrained=True)}
    lines = [
        "# Constrained decoding (tiny Qwen2-VL, random weights, CPU, 1 torch thread)",
        "",
        f"{len(rows)} replies: {ROWS_PER_FORMAT} of each output format ({', '.join(OUTPUT_FORMATS)}), "
        f"batches of {BATCH} mixing formats, temperature {SAMPLING.temperature}, max_new_tokens "
        f"{SAMPLING.max_new_tokens}; {os.cpu_count()} CPUs. Run: `python benchmarks/constrained_decoding.py`.",
        "",
        "| decoding | unparseable | off format | cut at the limit | replies/s | generated tokens/s | tokens/reply "
        f"| constraint ms per decoding step (batch of {BATCH}) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *(f"| {name} | {r['unparseable']:.1%} | {r['off_format']:.1%} | {r['cut']:.1%} | {r['replies_per_s']:.1f} | "
          f"{r['tokens_per_s']:.0f} | {r['tokens']:.1f} | {r['constraint_ms']:.2f} |" for name, r in results.items()),
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
