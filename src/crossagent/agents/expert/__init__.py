"""The scripted expert: reusable behaviours over the privileged state, and the agent that composes them."""
