"""Learning curves: every logged value to CSV as it comes, and a PNG at the end of training."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from crossagent.progress import progress_bar  # noqa: E402

CURVE_CSV = "loss_curve.csv"
CURVE_PNG = "loss_curve.png"


class LossCurveCallback(TrainerCallback):
    """Appends (step, loss, learning rate) at each log; plots the loss when training ends.

    A run resumed from a checkpoint first drops the rows logged after the checkpoint's step (a killed
    run logged them, the resumed run logs them again), so every step appears once.
    """

    def __init__(self, output_dir: str | Path, keys: tuple[str, ...] = ("loss", "learning_rate", "grad_norm")):
        self.path = Path(output_dir) / CURVE_CSV
        self.keys = keys

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or not self.path.exists():
            return
        with self.path.open(newline="") as file:
            rows = list(csv.reader(file))
        kept = [row for row in rows[1:] if int(row[0]) <= state.global_step]
        with self.path.open("w", newline="") as file:
            csv.writer(file).writerows([rows[0], *kept])

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or not state.is_world_process_zero or "loss" not in logs:
            return
        new = not self.path.exists()
        with self.path.open("a", newline="") as file:
            writer = csv.writer(file)
            if new:
                writer.writerow(["step", *self.keys])
            writer.writerow([state.global_step, *(logs.get(key, "") for key in self.keys)])

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.path.exists():
            plot_curve(self.path, self.path.with_name(CURVE_PNG))


class LossProgressCallback(TrainerCallback):
    """The project's progress bar (crossagent.progress: rate, ETA; one line per interval in a log file)
    with the last logged loss, in place of the Trainer's bar and its raw dict lines."""

    def __init__(self) -> None:
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar = progress_bar(state.max_steps, "SFT", unit="step")
            self.bar.update(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.3f}", refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def plot_curve(csv_path: Path, png_path: Path, key: str = "loss", title: str = "SFT") -> None:
    with csv_path.open() as file:
        rows = [row for row in csv.DictReader(file) if row.get(key)]
    steps = [int(row["step"]) for row in rows]
    values = [float(row[key]) for row in rows]
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(steps, values)
    axis.set_xlabel("optimizer step")
    axis.set_ylabel(key)
    axis.set_title(f"{title} {key}")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(png_path, dpi=120)
    plt.close(figure)
