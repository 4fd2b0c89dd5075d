"""What scores are computed from: each task's judged attempts, in sample-index order.

Only attempts that were made and judged count. An attempt never scheduled (a run stopped early) or
lost to an infrastructure error is absent, never a failure, so each task has its own n.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JudgedAttempt:
    """One judged attempt, as much of it as scores need."""

    index: int
    """Sample index within its task."""
    solved: bool
    """``resolved_guarded`` (the official verdict with no guard flag), or ``resolved`` itself where a
    report shows the unguarded coverage beside it."""
    patch_hash: str
    """Normalised patch hash; "" for an empty patch."""
    existing_tests_ok: bool = False
    """The repository's existing tests, run before the hidden test patch, still pass with this patch:
    what a user can check without the hidden tests, so the one test signal selection may use
    (False where it was not measured)."""
    dollars: float = 0.0
    tokens: int = 0
    """Input plus output tokens."""


@dataclass(frozen=True)
class TaskAttempts:
    """One task's judged attempts."""

    instance_id: str
    attempts: tuple[JudgedAttempt, ...]
    """Sorted by sample index."""

    @property
    def n(self) -> int:
        """Judged attempts."""
        return len(self.attempts)

    @property
    def c(self) -> int:
        """Solved attempts among them."""
        return sum(a.solved for a in self.attempts)

    def first(self, m: int) -> "TaskAttempts":
        """The same task with only its first ``m`` attempts (fits on the first half of the k range)."""
        return TaskAttempts(self.instance_id, self.attempts[:m])
