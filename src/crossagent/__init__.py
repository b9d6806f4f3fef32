"""crossagent: one agent model that acts at several levels of granularity in an open world."""

__version__ = "0.1.0"
