"""Run summaries: coverage, what could be picked without the hidden tests, scaling fits and cost,
from a sampling run's judged attempts. Pure once the records are loaded; ``load`` is the only I/O.

Correct means ``resolved_guarded``. An attempt counts only once judged (an EvalStatus in
``JUDGED_STATUSES``: graded, its patch did not apply, its tests timed out or hit a resource limit);
attempts never made, lost to infrastructure errors, undecidable, or whose evaluation errored are
absent from ``coverage``, so each task has its own n and nothing unscheduled is scored as a
failure. Beside it, ``coverage_all_tasks`` is the paper's denominator: every task the run was asked
to cover, a task without any judged attempt counting as unsolved; every such task is named with
the reason it has no verdict. A figure the records cannot support (a cost whose usage was never
reported, FLOPs of a model of unknown size) is null, with the reason under ``unknown``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.scores.fits import extrapolate_distribution, extrapolate_power_law, holdout
from harness.patches import is_empty, patch_hash
from harness.scores.judged import JudgedAttempt, TaskAttempts
from harness.scores.coverage import (Selection, coverage_curve, ks_up_to, max_common_k, pass_at_k, selection_curves,
                                     solve_rate_histogram)
from harness.store import (AUDITS_META, JUDGED_STATUSES, NO_IMAGE_META, PARAMETERS_META, TASKS_META, StoredAttempt,
                           AttemptStatus, EvalRecord, EvalStatus, RunStore)

# An evaluation error that means the task's image is missing (harness/evaluate.py's InfraError text).
_NO_IMAGE_ERROR = "is not here"

DEFINITIONS = {
    "coverage": "mean unbiased pass@k over the tasks with at least k judged attempts (a task with fewer, or "
                "none, is left out at that k); correct = resolved_guarded",
    "coverage_all_tasks": "mean unbiased pass@k over every task the run was asked to cover, a task without any "
                          "judged attempt counting as unsolved (the paper's denominator); only up to max_common_k, "
                          "the largest k every task with judged attempts reaches",
    "coverage_unguarded": "as coverage, but correct = the official resolved verdict, guard flags ignored",
    "selection": "what a user could pick from k attempts without the hidden tests; selection_signals says what "
                 "each method reads",
    "cost.dollars": "every dollar the run spent: judged and not-yet-judged attempts, infrastructure-failed and "
                    "abandoned tries (redone ones included)",
    "cost.per_attempt": "cost.dollars over the attempts that finished (what one usable attempt cost, failed "
                        "tries included)",
    "cost.per_solved_issue": "cost.dollars over the tasks solved (resolved_guarded) by at least one attempt",
    "cost.flops": "2 x parameters x every token the run spent (input and output, failed tries included)",
}


@dataclass
class RunData:
    """What a report reads from one run."""

    run: str
    fingerprint: dict[str, Any]
    attempts: list[StoredAttempt]
    evaluations: list[EvalRecord]
    difficulty: dict[str, str] = field(default_factory=dict)
    """instance_id -> difficulty, where the task set says (the bundled suite does)."""
    history: list[StoredAttempt] = field(default_factory=list)
    """Tries that are no longer attempts of the run (redone after an infrastructure error, or
    abandoned by an interrupt): never scored, but what they spent is part of the cost."""
    requested: list[str] = field(default_factory=list)
    """Every task the run was asked to cover (the sampler's task list); empty when it recorded none."""
    audits: dict[str, dict[str, Any]] = field(default_factory=dict)
    """instance_id -> the evaluation's gold audit: runs, flaky {test: [passed, runs]}, gold_failing, error."""
    no_image: dict[str, str] = field(default_factory=dict)
    """instance_id -> why sampling could not make attempts for it."""
    parameters: dict[str, Any] = field(default_factory=dict)
    """The model's parameter count as the sampler recorded it: parameters, source, reason."""


def load(run: str, root=None, tasks: Sequence = ()) -> RunData:
    """A run's records from its store."""
    store = RunStore(run, root)
    try:
        data = RunData(run, store.meta("fingerprint") or {}, store.attempts(), store.evaluations(),
                       history=store.attempt_history(), requested=sorted(store.meta(TASKS_META) or {}),
                       audits=store.meta(AUDITS_META) or {}, no_image=store.meta(NO_IMAGE_META) or {},
                       parameters=store.meta(PARAMETERS_META) or {})
    finally:
        store.close()
    data.difficulty = {t.instance_id: t.difficulty.value for t in tasks if getattr(t, "difficulty", None)}
    return data


def _judged(e: EvalRecord) -> bool:
    return e.status in JUDGED_STATUSES


def task_attempts(data: RunData, *, guarded: bool = True, hashes: dict[str, str] | None = None) -> list[TaskAttempts]:
    """Each task's judged attempts, in sample order. Correct is ``resolved_guarded``, or the official
    ``resolved`` with ``guarded=False``. ``hashes`` (patch -> patch_hash), shared between calls on the
    same records, spares hashing every patch again (seconds at 75,000 attempts)."""
    hashes = {} if hashes is None else hashes
    verdicts = {(e.instance_id, e.index): e for e in data.evaluations if _judged(e)}
    by_task: dict[str, list[JudgedAttempt]] = {}
    for a in data.attempts:
        e = verdicts.get((a.instance_id, a.index))
        # A verdict belongs to one patch: one judged on another patch at this index (an attempt made
        # again since) leaves this attempt unjudged.
        if a.status != AttemptStatus.DONE.value or e is None:
            continue
        # The hash the sampler stored with the attempt spares hashing its patch again; an attempt
        # without one (made before it was stored, or not by the sampler), or with one that differs
        # (another version's normalisation, or a verdict on another patch), has its patch hashed here.
        if a.details.get("patch_hash") != e.patch_hash and e.patch_hash != _hash(a.patch, hashes):
            continue
        usage = a.details.get("usage", {})
        by_task.setdefault(a.instance_id, []).append(JudgedAttempt(
            index=a.index, solved=e.resolved_guarded if guarded else e.resolved,
            patch_hash="" if is_empty(a.patch or "") else e.patch_hash,
            # Never pass_to_pass_ok: it is read with the hidden test patch applied, which no user has.
            existing_tests_ok=bool(e.existing_tests_ok), dollars=float(a.details.get("dollars") or 0.0),
            tokens=int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))))
    return [TaskAttempts(iid, tuple(sorted(xs, key=lambda x: x.index))) for iid, xs in sorted(by_task.items())]


def _hash(patch: str | None, hashes: dict[str, str]) -> str:
    key = patch or ""
    if key not in hashes:
        hashes[key] = patch_hash(patch)
    return hashes[key]


def mean_coverage(tasks: Sequence[TaskAttempts], k: int) -> float:
    """Mean unbiased pass@k over the tasks that have at least k judged attempts."""
    values = [pass_at_k(t.n, t.c, k) for t in tasks if t.n >= k]
    return sum(values) / len(values) if values else float("nan")


def summarize(data: RunData, *, bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The JSON summary of one run; ``definitions`` in it says what each coverage and cost figure is."""
    hashes: dict[str, str] = {}
    tasks = [t for t in task_attempts(data, hashes=hashes) if t.n > 0]
    common = max_common_k(tasks)
    largest = max((t.n for t in tasks), default=0)
    model = data.fingerprint.get("model", {})
    requested = _requested(data)
    judged_ids = {t.instance_id for t in tasks}
    finished = sum(1 for a in data.attempts if a.status == AttemptStatus.DONE.value)
    statuses = Counter(e.status for e in data.evaluations)
    summary: dict[str, Any] = {
        "run": data.run, "model": model.get("model"), "scaffold": data.fingerprint.get("scaffold"),
        "gguf_sha256": model.get("gguf_sha256"), "temperature": model.get("temperature"),
        "definitions": DEFINITIONS,
        "requested_tasks": len(requested),
        "requested_tasks_source": "the sampler's task list" if data.requested else
                                  "tasks seen in the run's records (it recorded no task list)",
        "tasks": len(tasks), "judged_attempts": sum(t.n for t in tasks),
        "unjudged_attempts": finished - sum(t.n for t in tasks),
        "infra_error_attempts": sum(1 for a in data.attempts if a.status == AttemptStatus.INFRA_ERROR.value),
        "redone_or_abandoned_tries": len(data.history),
        "max_common_k": common, "max_k": largest,
        "tasks_without_verdicts": _without_verdicts(data, [i for i in requested if i not in judged_ids]),
        "gold_failing": [{"instance_id": iid, "tests": list(a.get("gold_failing") or []), "runs": a.get("runs")}
                         for iid, a in sorted(data.audits.items()) if a.get("gold_failing")],
        "evaluation_statuses": dict(sorted(statuses.items())),
        "timed_out": statuses[EvalStatus.TIMED_OUT.value],
        "resource_limit": statuses[EvalStatus.RESOURCE_LIMIT.value],
        "undecidable": [{"instance_id": e.instance_id, "index": e.index, "detail": e.error}
                        for e in data.evaluations if e.status == EvalStatus.UNDECIDABLE.value],
        "flagged": [{"instance_id": e.instance_id, "index": e.index, "flags": list(e.guard_flags),
                     "resolved": e.resolved, "status": e.status} for e in data.evaluations if e.guard_flags],
        "flaky": sorted({e.instance_id for e in data.evaluations if e.flaky_tests}
                        | {iid for iid, a in data.audits.items() if a.get("flaky")}),
        "selection_signals": _selection_signals(data),
        "cost": _cost(data, tasks),
    }
    if not tasks:
        return {**summary, "coverage": [], "coverage_all_tasks": [], "coverage_unguarded": [], "selection": {},
                "fits": {}, "per_task": []}
    ks = ks_up_to(largest)
    summary["coverage"] = [asdict(p) for p in coverage_curve(tasks, ks, bootstrap=bootstrap, seed=seed)]
    summary["coverage_all_tasks"] = _coverage_all_tasks(tasks, requested, common, bootstrap, seed)
    unguarded = [t for t in task_attempts(data, guarded=False, hashes=hashes) if t.n > 0]
    summary["coverage_unguarded"] = [asdict(p) for p in coverage_curve(unguarded, ks, bootstrap=bootstrap, seed=seed)]
    summary["selection"] = {m.value: [asdict(p) for p in curve]
                            for m, curve in selection_curves(tasks, list(Selection), ks, seed=seed, bootstrap=bootstrap).items()}
    summary["fits"] = _fits(tasks, common, seed)
    summary["solve_rates"] = [list(b) for b in solve_rate_histogram(tasks)]
    summary["per_task"] = [{"instance_id": t.instance_id, "n": t.n, "c": t.c, "rate": round(t.c / t.n, 4),
                            "difficulty": data.difficulty.get(t.instance_id)} for t in tasks]
    summary["solved_by_difficulty"] = _by_difficulty(tasks, data.difficulty)
    return summary


def _requested(data: RunData) -> list[str]:
    """Every task the run was asked to cover; without the sampler's list, every task its records name."""
    seen = {a.instance_id for a in data.attempts} | {a.instance_id for a in data.history} | set(data.no_image)
    if not data.requested:
        seen |= {e.instance_id for e in data.evaluations}
    return sorted(set(data.requested) | seen)


def _coverage_all_tasks(tasks: list[TaskAttempts], requested: list[str], common: int, bootstrap: int,
                        seed: int) -> list[dict[str, Any]]:
    """Coverage over every requested task, one without a judged attempt counting as unsolved. Only up
    to ``common``: past it a task with fewer judged attempts has no pass@k, and dropping it would
    change the denominator this curve exists to keep."""
    judged = {t.instance_id for t in tasks}
    # A task with no verdict as ``common`` unsolved attempts: pass@k = 0 at every k it is shown for.
    unsolved = [TaskAttempts(iid, tuple(JudgedAttempt(i, False, "") for i in range(common)))
                for iid in requested if iid not in judged]
    return [asdict(p) for p in coverage_curve(tasks + unsolved, ks_up_to(common), bootstrap=bootstrap, seed=seed)]


def _without_verdicts(data: RunData, ids: Sequence[str]) -> list[dict[str, str]]:
    """Each requested task without a judged attempt, with a reason code and the evidence for it."""
    attempts: dict[str, list[StoredAttempt]] = {}
    for a in data.attempts:
        attempts.setdefault(a.instance_id, []).append(a)
    evals = {(e.instance_id, e.index): e for e in data.evaluations}
    found = []
    for iid in ids:
        reason, detail = _no_verdict(iid, attempts.get(iid, []), evals, data.audits.get(iid) or {}, data.no_image)
        found.append({"instance_id": iid, "reason": reason, "detail": detail})
    return found


def _no_verdict(iid: str, attempts: list[StoredAttempt], evals: dict[tuple[str, int], EvalRecord],
                audit: dict[str, Any], no_image: dict[str, str]) -> tuple[str, str]:
    done = [a for a in attempts if a.status == AttemptStatus.DONE.value]
    if not attempts:
        if iid in no_image:
            return "no_image", no_image[iid]
        return "not_sampled", "no attempt was made for it yet"
    if not done:
        error = attempts[-1].details.get("error") or "no error recorded"
        return "infra_errors_only", (f"{len(attempts)} attempt(s), all infrastructure errors (the next sampling call "
                                     f"redoes them); last: {error}")
    if audit.get("gold_failing"):
        tests = audit["gold_failing"]
        return "gold_failing", (f"the gold patch fails {len(tests)} expected test(s) here, e.g. {tests[0]}: this "
                                f"environment cannot judge the task")
    if audit.get("error"):
        return "gold_audit_error", str(audit["error"])
    judged = [evals.get((iid, a.index)) for a in done]
    for e in judged:
        if e is not None and e.status == EvalStatus.ERROR.value and _NO_IMAGE_ERROR in e.error:
            return "no_image", e.error
    counts = Counter("not_evaluated" if e is None else e.status for e in judged)
    if set(counts) == {"not_evaluated"}:
        return "not_evaluated", f"{len(done)} finished attempt(s) not evaluated yet (monkeys evaluate --run)"
    if set(counts) == {EvalStatus.UNDECIDABLE.value}:
        return "undecidable", next(e.error for e in judged if e) or "no FAIL_TO_PASS test left to decide"
    if set(counts) == {EvalStatus.ERROR.value}:
        return "evaluation_errors", next(e.error for e in judged if e) or "evaluation error"
    return "no_judged_attempt", ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def _selection_signals(data: RunData) -> dict[str, str]:
    """What each selection method reads, and for how many judged attempts that signal was measured."""
    judged = [e for e in data.evaluations if _judged(e)]
    measured = sum(1 for e in judged if e.existing_tests_ok is not None)
    tests = (f"existing_tests_ok: the repository's existing tests, run before the hidden test patch is applied "
             f"(measured for {measured} of {len(judged)} judged attempts; an unmeasured attempt counts as breaking "
             f"them); never the PASS_TO_PASS results, which come from runs with the hidden tests")
    return {Selection.MAJORITY.value: "the normalised patch only (most common non-empty patch); no test is read",
            Selection.FIRST_P2P.value: tests, Selection.MAJORITY_P2P.value: tests}


def _fits(tasks: list[TaskAttempts], common: int, seed: int, *, bootstrap: int = 200) -> dict[str, Any]:
    """The ``fits`` section: the exp(a k^b) law fitted to the coverage curve up to the common k, the
    distributional model fitted to every task's (n, c), both extrapolated to 16x the common k with
    ``bootstrap``-resample intervals over tasks, and the first-half holdout. A fit whose status is
    not ok has a null curve and says why (harness/scores/fits.py): a number the data cannot support is
    not drawn. Each resample refits every variant, so the fits get their own, smaller, bootstrap
    count rather than the coverage curves'. At 200, for 300 tasks x 250 attempts all solved at one
    rate (bench/report_scale.py; a flat likelihood ridge, where fits run to their evaluation cap)
    the refits take about 40 s of CPU in one process: the holdout's scaled-Beta refits evaluate the
    likelihood ~400,000 times, and a formulation that rounds differently would move the optimiser's
    path, and so the numbers."""
    far = ks_up_to(max(common, 1) * 16)
    law = extrapolate_power_law(tasks, ks_up_to(common), far, bootstrap=bootstrap, seed=seed)
    distribution = extrapolate_distribution(tasks, far, bootstrap=bootstrap, seed=seed)
    check = holdout(tasks, bootstrap=bootstrap, seed=seed)
    return {"power_law": {**law.as_dict(), "fitted_to_k": common}, "distribution": distribution.as_dict(),
            "holdout": None if check is None else check.as_dict()}


_TRY_KINDS = ("judged", "not_judged", "infra_failed", "abandoned")


def _try_kind(a: StoredAttempt, judged: set[tuple[str, int]], current: bool) -> str:
    if a.status == AttemptStatus.DONE.value and current:
        return "judged" if (a.instance_id, a.index) in judged else "not_judged"
    return "abandoned" if a.status == AttemptStatus.ABANDONED.value else "infra_failed"


def _cost(data: RunData, tasks: list[TaskAttempts]) -> dict[str, Any]:
    """Every dollar and token the run spent, over every try; a figure it cannot know is None, with
    the reason under ``unknown``."""
    judged = {(e.instance_id, e.index) for e in data.evaluations if _judged(e)}
    tries = [(a, True) for a in data.attempts] + [(a, False) for a in data.history]
    finished = sum(1 for a in data.attempts if a.status == AttemptStatus.DONE.value)
    solved = sum(1 for t in tasks if t.c)
    by_kind: dict[str, float | None] = {k: 0.0 for k in _TRY_KINDS}
    tries_by_kind = Counter()
    tokens: int | None = 0
    no_usage, unpriced, no_tokens = [], [], []
    for a, current in tries:
        kind = _try_kind(a, judged, current)
        tries_by_kind[kind] += 1
        d = a.details
        gaps = int(d.get("calls_without_usage") or 0)
        if gaps:
            no_usage.append(f"{a.instance_id}#{a.index}")
        usage = d.get("usage")
        if usage is None or gaps:
            no_tokens.append(f"{a.instance_id}#{a.index}")
        elif tokens is not None:
            tokens += int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))
        # A host-hour price does not depend on tokens, so a missing usage block leaves it known.
        hourly = (d.get("price") or {}).get("kind") == "hourly"
        dollars = d.get("dollars")
        if dollars is None or (gaps and not hourly):
            unpriced.append(f"{a.instance_id}#{a.index}")
            by_kind[kind] = None
        elif by_kind[kind] is not None:
            by_kind[kind] += float(dollars)
    unknown: dict[str, str] = {}
    if no_tokens:
        tokens = None
        unknown["tokens"] = (f"{len(no_tokens)} tries have no token count ({len(no_usage)} had a model response "
                             f"without a usage block): {', '.join(no_tokens[:10])}")
    dollars = None if unpriced else sum(v for v in by_kind.values() if v is not None)
    if unpriced:
        unknown["dollars"] = (f"{len(unpriced)} tries cannot be priced (a per-token price and a response without "
                              f"usage, or no cost recorded): {', '.join(unpriced[:10])}")
    params = data.parameters.get("parameters")
    if not params:
        unknown["parameters"] = data.parameters.get("reason") or (
            "the run recorded no parameter count (sampled before monkeys recorded one)")
    flops = 2.0 * params * tokens if params and tokens is not None else None
    if flops is None:
        unknown["flops"] = unknown.get("parameters") or unknown["tokens"]

    def per(total, count, what: str, total_name: str, nothing: str) -> float | None:
        if total is None or not count:
            unknown[what] = f"{total_name} is unknown" if total is None else nothing
            return None
        return total / count

    return {
        "dollars": dollars,
        "dollars_by_kind": by_kind,
        "tries": len(tries), "tries_by_kind": {k: tries_by_kind[k] for k in _TRY_KINDS},
        "finished_attempts": finished,
        # Every try spent money: what one usable attempt cost, failed ones included.
        "per_attempt": per(dollars, finished, "per_attempt", "cost.dollars", "no attempt finished"),
        "per_solved_issue": per(dollars, solved, "per_solved_issue", "cost.dollars", "no task solved"),
        "solved_tasks": solved,
        "tokens": tokens,
        "tokens_per_attempt": per(tokens, finished, "tokens_per_attempt", "cost.tokens", "no attempt finished"),
        "attempts_without_usage": len(no_usage), "without_usage": no_usage,
        "parameters": params or None, "parameters_source": data.parameters.get("source") if params else None,
        "flops": flops,
        "flops_per_attempt": per(flops, finished, "flops_per_attempt", "cost.flops", "no attempt finished"),
        "unknown": unknown,
    }


def _by_difficulty(tasks: list[TaskAttempts], difficulty: dict[str, str]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for t in tasks:
        row = table.setdefault(difficulty.get(t.instance_id) or "unknown", {"tasks": 0, "solved": 0})
        row["tasks"] += 1
        row["solved"] += 1 if t.c else 0
    return table


def notes(s: dict[str, Any]) -> list[str]:
    """The text report's lines beside its table, from one run's summary: tasks without verdicts, gold
    patches failing here, flagged attempts, statuses, what was spent and every figure that is unknown."""
    run, cost = s["run"], s.get("cost") or {}
    lines = []
    for t in s.get("tasks_without_verdicts") or []:
        lines.append(f"{run}: no verdict for {t['instance_id']}: {t['reason']} ({t['detail']})")
    for g in s.get("gold_failing") or []:
        lines.append(f"{run}: gold patch fails here: {g['instance_id']} ({len(g['tests'])} tests: "
                     f"{', '.join(g['tests'][:3])}{', ...' if len(g['tests']) > 3 else ''})")
    flagged = s.get("flagged") or []
    if flagged:
        lines.append(f"{run}: {len(flagged)} flagged attempts (not counted as solved): " + ", ".join(
            f"{f['instance_id']}#{f['index']} [{', '.join(f['flags'])}]" for f in flagged[:20])
            + (" ..." if len(flagged) > 20 else ""))
    undecidable = s.get("undecidable") or []
    if s.get("timed_out") or s.get("resource_limit") or undecidable:
        named = ", ".join(f"{u['instance_id']}#{u['index']}" for u in undecidable[:20])
        lines.append(f"{run}: {s.get('timed_out', 0)} timed out and {s.get('resource_limit', 0)} hit a resource "
                     f"limit (judged unresolved); {len(undecidable)} undecidable (left out)" + (f": {named}" if named else ""))
    if cost:
        dollars, flops = cost.get("dollars"), cost.get("flops")
        kinds = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in (cost.get("tries_by_kind") or {}).items())
        size = ("unknown" if flops is None else
                f"{flops:.3g} ({cost.get('parameters')} parameters, {cost.get('parameters_source')})")
        lines.append(f"{run}: spent {'unknown dollars' if dollars is None else f'${dollars:.4f}'} over "
                     f"{cost.get('tries', 0)} tries ({kinds}); FLOPs {size}")
        if cost.get("attempts_without_usage"):
            lines.append(f"{run}: {cost['attempts_without_usage']} tries had a model response without token usage")
        unknown = cost.get("unknown") or {}
        for field_name, why in unknown.items():
            # Figures derived from an unknown one (per attempt, FLOPs of an unknown size) add nothing.
            if not why.endswith(" is unknown") and not (field_name == "flops" and why == unknown.get("parameters")):
                lines.append(f"{run}: {field_name} unknown: {why}")
    signals = s.get("selection_signals") or {}
    if "first_p2p" in signals:
        lines.append(f"{run}: selection by tests reads {signals['first_p2p']}")
    return lines


def compare(summaries: Sequence[dict[str, Any]]) -> list[str]:
    """The paper's Table 1 as sentences: k attempts of a cheaper run against one of a dearer one, at
    about the same spend."""
    lines = []
    priced = [s for s in summaries if s.get("cost", {}).get("per_attempt")]
    for cheap in priced:
        for dear in priced:
            if cheap is dear or cheap["cost"]["per_attempt"] >= dear["cost"]["per_attempt"]:
                continue
            k = max(1, min(cheap["max_common_k"], math.floor(dear["cost"]["per_attempt"] / cheap["cost"]["per_attempt"] + 1e-9)))
            ours = _coverage_at(cheap, k)
            theirs = _coverage_at(dear, 1)
            if ours is None or theirs is None:
                continue
            lines.append(f"{k} attempt{'s' if k > 1 else ''} of {cheap['run']} cost ${k * cheap['cost']['per_attempt']:.4f} "
                         f"per issue and solve {ours:.1%}, vs 1 attempt of {dear['run']} at "
                         f"${dear['cost']['per_attempt']:.4f} and {theirs:.1%}")
    return lines


def _coverage_at(summary: dict[str, Any], k: int) -> float | None:
    values = [pass_at_k(t["n"], t["c"], k) for t in summary.get("per_task", []) if t["n"] >= k]
    return sum(values) / len(values) if values else None
