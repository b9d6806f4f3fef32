"""The latent level's executor: the codebook's decoder (executors.latent_model) runs a code, one primitive
action per step, until it says done or its chunk's length is spent.

As the learned executors (executors.learned), it reads the player's observation only: each step it
renders the text view from the state (envs.text_view.render_text) and parses it back; the state object is
never read otherwise. Actions are taken greedily: a code stands for one chunk of a few actions, so there
is no long memoryless walk for sampling to break (executors.learned samples for that reason).
"""

from __future__ import annotations

import torch

from crossagent.actions.executor import Executor, Stop, done, failed
from crossagent.actions.latent import Latent
from crossagent.envs.privileged_state import PrivilegedState
from crossagent.envs.text_view import render_text
from crossagent.executors.features import stack, step_input
from crossagent.executors.latent_model import LatentModel, chunk_at, first_view
from crossagent.executors.observation import parse_view


class LatentExecutor:
    """`execute` has the scripted executors' signature (actions.<level>.execute)."""

    def __init__(self, model: LatentModel):
        self.model = model.eval()

    def code_of(self, actions: list[int], text: str) -> int:
        """The code of a chunk of primitive action indices (shorter than a chunk at an episode's end) that
        starts at the text view `text`."""
        chunk = torch.tensor([chunk_at(actions, 0, self.model.config.chunk)])
        return int(self.model.codes_of(chunk, stack([first_view(text)]))[0])

    def execute(self, action: Latent, state: PrivilegedState, image_size: int) -> Executor:
        chunk, codes = self.model.config.chunk, self.model.config.codes
        if action.code >= codes:
            return failed(f"code {action.code} is not in this codebook of {codes} codes")
        with torch.no_grad():
            vector = self.model.code_vectors(torch.tensor([action.code]))
        history: list[int] = []
        for step in range(chunk):
            view = parse_view(render_text(state))
            with torch.no_grad():
                logits, finished = self.model.decode(stack([step_input(view, [], None, history, step)]), vector,
                                                     torch.tensor([step]))
            chosen = int(logits[0].argmax())
            yield chosen
            history.append(chosen)
            if finished[0] > 0:
                return done(f"the latent decoder is done after {step + 1} steps")
        return Stop("budget", f"the latent decoder took its chunk's {chunk} steps")
