"""Makes attempts: drives a model through repository edits in a task's container.

Builds on ``harness`` (tasks, images, the container runtime, the run store); never the reverse.
"""
