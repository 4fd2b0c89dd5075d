"""monkeys: repeated sampling of coding agents, judged by each task's own tests."""

__version__ = "0.1.0"
