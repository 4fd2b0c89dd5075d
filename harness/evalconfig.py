"""What one evaluation call is asked for: the grading policy, how many runs, the time and container
limits, and how many evaluations at once."""

from __future__ import annotations

from dataclasses import dataclass

from harness.containers import Limits
from harness.grading import PAPER_RUNS, Policy

DEFAULT_AUDIT_RUNS = 5


@dataclass(frozen=True)
class EvalConfig:
    policy: Policy = Policy.MAJORITY
    """How a test's outcomes over several runs become one."""
    reruns: int = PAPER_RUNS
    """Runs a verdict gets when it hinges on a flaky test."""
    audit_runs: int = DEFAULT_AUDIT_RUNS
    """Runs of the gold patch in a task's flaky audit."""
    timeout: float = 1800.0
    """Seconds one run of the test command may take."""
    apply_timeout: float = 300.0
    """Seconds applying the patches may take."""
    workers: int = 1
    """Evaluations at once (each gets ``limits``)."""
    limits: Limits = Limits()
    existing_tests: bool = False
    """Also run the repository's existing tests without the hidden test patch, for each patch and for
    no patch: the signal a user really has when choosing among attempts (``existing_tests_ok``)."""
