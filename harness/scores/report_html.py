"""The HTML report: one self-contained file (plots as inline PNG) for one or more runs side by side."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display here, and none needed
import matplotlib.pyplot as plt  # noqa: E402

from harness.scores.fits import MIN_SOLVED_TASKS, MIN_SOLVES  # noqa: E402


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _finish(fig, ax, xlabel: str, ylabel: str, *, coverage: bool = False, legend: int = 8) -> str:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if coverage:
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # an empty legend only warns
        ax.legend(fontsize=legend)
    return _png(fig)


def coverage_plot(summaries: Sequence[dict[str, Any]]) -> str:
    """Coverage vs k on a log axis, with the selection curves and both fits."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in summaries:
        cov = s.get("coverage") or []
        if not cov:
            continue
        ks = [p["k"] for p in cov]
        line, = ax.plot(ks, [p["value"] for p in cov], "o-", label=f"{s['run']}: coverage")
        ax.fill_between(ks, [p["low"] for p in cov], [p["high"] for p in cov], color=line.get_color(), alpha=0.15)
        for method, points in (s.get("selection") or {}).items():
            ax.plot([p["k"] for p in points], [p["value"] for p in points], ":", color=line.get_color(), alpha=0.7,
                    label=f"{s['run']}: pick by {method}")
        # Only fits whose status is ok have a curve; the others are named in the fits table with
        # their reason, never drawn.
        fits = s.get("fits") or {}
        for key, style, label in (("distribution", "--", "per-task model"), ("power_law", "-.", "exp(a k^b)")):
            curve = (fits.get(key) or {}).get("curve")
            if curve:
                xs = [p["k"] for p in curve]
                ax.plot(xs, [p["value"] for p in curve], style, color=line.get_color(), alpha=0.8,
                        label=f"{s['run']}: {label}")
                ax.fill_between(xs, [p["low"] for p in curve], [p["high"] for p in curve], color=line.get_color(),
                                alpha=0.07)
    ax.set_xscale("log", base=2)
    return _finish(fig, ax, "attempts per task (k)", "coverage (pass@k)", coverage=True, legend=7)


def _num(x: float | None, digits: int = 3) -> str:
    return "?" if x is None else f"{x:.{digits}g}"


def _far(fit: dict[str, Any]) -> str:
    last = fit["curve"][-1]
    return f"coverage at k={last['k']}: {last['value']:.3f} [{last['low']:.3f}, {last['high']:.3f}]"


def _power_law_cell(law: dict[str, Any] | None) -> str:
    if not law:
        return "not fitted"
    params = "" if law.get("a") is None else (f"a={_num(law['a'])}, b={_num(law['b'])}, rmse={_num(law['rmse'])}, "
                                               f"exponent -b={_num(law['exponent'])}")
    if not law.get("curve"):
        return f"no prediction: {law.get('reason') or law.get('status')}" + (f" (fit: {params})" if params else "")
    return f"{params}; {_far(law)}"


def _distribution_cell(dist: dict[str, Any] | None) -> str:
    if not dist:
        return "not fitted"
    p = dist.get("parameters")
    params = "" if not p else (f"{dist['variant']} (chosen by {dist['selection']}): alpha={_num(p['alpha'])}, "
                               f"beta={_num(p['beta'])}, scale={_num(p['scale'])}, zero={_num(p['zero'])}, "
                               f"log L={_num(dist['log_likelihood'], 6)}")
    if not dist.get("curve"):
        return f"no prediction: {dist.get('reason') or dist.get('status')}" + (f" (fit: {params})" if params else "")
    return (f"{params}; exponent alpha={_num(dist['exponent'])} [{_num(dist['exponent_low'])}, "
            f"{_num(dist['exponent_high'])}], plateau {dist['plateau']:.3f}; {_far(dist)}")


def _holdout_cell(hold: dict[str, Any] | None) -> str:
    if not hold:
        return "k too small (fewer than 4 attempts on some task)"

    def said(model: dict[str, Any]) -> str:
        if model.get("value") is None:
            return f"no prediction: {model.get('reason') or model.get('status')}"
        return f"{model['value']:.3f} [{model['low']:.3f}, {model['high']:.3f}]"

    return (f"k<={hold['fitted_on_k_up_to']} -> k={hold['predicted_k']}: measured {hold['measured']:.3f}; "
            f"exp(a k^b) {said(hold['power_law'])}; per-task model {said(hold['distribution'])}")


def _fits_section(summaries: Sequence[dict[str, Any]]) -> str:
    """The scaling-fits table: parameters, status and the farthest prediction with its interval,
    or "no prediction: <reason>" where the fit may not extrapolate."""
    rows = [[s["run"], _power_law_cell((s.get("fits") or {}).get("power_law")),
             _distribution_cell((s.get("fits") or {}).get("distribution")),
             _holdout_cell((s.get("fits") or {}).get("holdout"))] for s in summaries]
    note = ("<p>exp(a k^b): the curve of Brown et al. 2024 fitted to the coverage curve. Per-task model: each "
            "task's single-attempt success probability p is 0 with probability <i>zero</i>, else <i>scale</i> x "
            "Beta(alpha, beta), fitted to every task's (attempts, solves) by the beta-binomial likelihood, variant "
            "chosen by AIC (Schaeffer et al. 2025); coverage plateaus at 1 - zero and approaches it like k^-alpha. "
            f"Intervals: 95% bootstrap over tasks. A fit at a bound of its parameters, or resting on fewer than "
            f"{MIN_SOLVED_TASKS} solved tasks or {MIN_SOLVES} solves, predicts nothing.</p>")
    return note + _table(["run", "exp(a k^b)", "per-task model", "fitted on the first half, predicting the largest k"],
                         rows)


def cost_plot(summaries: Sequence[dict[str, Any]]) -> str:
    """Coverage against dollars spent per task: runs compared at equal spend."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in summaries:
        per = (s.get("cost") or {}).get("per_attempt")
        cov = s.get("coverage") or []
        if per and cov:
            ax.plot([p["k"] * per for p in cov], [p["value"] for p in cov], "o-", label=s["run"])
    ax.set_xscale("log")
    return _finish(fig, ax, "dollars per task (k x cost per attempt)", "coverage", coverage=True)


def rates_plot(summaries: Sequence[dict[str, Any]]) -> str:
    """The distribution of per-task solve rates (c / n)."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for s in summaries:
        rates = [t["rate"] for t in s.get("per_task") or []]
        if rates:
            ax.hist(rates, bins=10, range=(0, 1), alpha=0.5, label=s["run"])
    return _finish(fig, ax, "per-task solve rate (c / n)", "tasks")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(summaries: Sequence[dict[str, Any]], comparisons: Sequence[str]) -> str:
    """The whole report as one HTML document."""
    def money(x):
        # None is a figure the records cannot support (see the reasons below), never $0.
        return "unknown" if x is None else f"${x:.5f}"

    def at(curve, i):
        return f"{curve[i]['value']:.3f} (k={curve[i]['k']})" if curve else ""

    overview = _table(
        ["run", "model", "scaffold", "tasks asked", "tasks with verdicts", "judged attempts", "k (all tasks)",
         "coverage@1", "coverage@max", "all tasks: coverage@max", "unguarded: coverage@max",
         "$ / attempt", "$ / solved issue", "FLOPs / attempt", "GGUF sha256"],
        [[s["run"], s.get("model"), s.get("scaffold"), s.get("requested_tasks", s["tasks"]), s["tasks"],
          s["judged_attempts"], s["max_common_k"], at(s.get("coverage"), 0), at(s.get("coverage"), -1),
          at(s.get("coverage_all_tasks"), -1), at(s.get("coverage_unguarded"), -1),
          money((s.get("cost") or {}).get("per_attempt")), money((s.get("cost") or {}).get("per_solved_issue")),
          "unknown" if (s.get("cost") or {}).get("flops_per_attempt") is None
          else f"{s['cost']['flops_per_attempt']:.3g}", (s.get("gguf_sha256") or "")[:16]]
         for s in summaries])
    missing = _table(["run", "instance", "reason", "detail"],
                     [[s["run"], t["instance_id"], t["reason"], t["detail"]]
                      for s in summaries for t in s.get("tasks_without_verdicts") or []])
    gold = _table(["run", "instance", "expected tests the gold patch fails here", "gold runs"],
                  [[s["run"], g["instance_id"], ", ".join(g["tests"]), g.get("runs")]
                   for s in summaries for g in s.get("gold_failing") or []])
    flagged = _table(["run", "instance", "sample", "guard flags", "official verdict"],
                     [[s["run"], f["instance_id"], f["index"], ", ".join(f["flags"]),
                       "resolved" if f["resolved"] else "unresolved"]
                      for s in summaries for f in s.get("flagged") or []])
    statuses = _table(["run", "timed out (unresolved)", "resource limit (unresolved)", "undecidable (left out)",
                       "evaluation statuses"],
                      [[s["run"], s.get("timed_out", 0), s.get("resource_limit", 0),
                        ", ".join(f"{u['instance_id']}#{u['index']}" for u in s.get("undecidable") or []) or "none",
                        ", ".join(f"{n} {k}" for k, n in (s.get("evaluation_statuses") or {}).items())]
                       for s in summaries])
    signals = "".join(f"<li>{html.escape(s['run'])}: {html.escape(method)} reads {html.escape(text)}</li>"
                      for s in summaries for method, text in (s.get("selection_signals") or {}).items())
    spent = _table(["run", "dollars spent (every try)", "tries", "tokens", "tries without usage", "parameters",
                    "FLOPs", "unknown, and why"],
                   [[s["run"], money((s.get("cost") or {}).get("dollars")), (s.get("cost") or {}).get("tries", 0),
                     "unknown" if (s.get("cost") or {}).get("tokens") is None else s["cost"]["tokens"],
                     (s.get("cost") or {}).get("attempts_without_usage", 0),
                     f"{s['cost']['parameters']:,} ({s['cost'].get('parameters_source')})"
                     if (s.get("cost") or {}).get("parameters") else "unknown",
                     "unknown" if (s.get("cost") or {}).get("flops") is None else f"{s['cost']['flops']:.3g}",
                     "; ".join(f"{k}: {v}" for k, v in ((s.get("cost") or {}).get("unknown") or {}).items())]
                    for s in summaries])
    definitions = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>"
                          for k, v in (summaries[0].get("definitions") or {}).items()) if summaries else ""
    fits = _fits_section(summaries)
    tasks = _table(["run", "instance", "difficulty", "n", "solved", "rate", "flaky"],
                   [[s["run"], t["instance_id"], t.get("difficulty") or "", t["n"], t["c"], t["rate"],
                     "yes" if t["instance_id"] in s.get("flaky", []) else ""]
                    for s in summaries for t in s.get("per_task") or []])
    flaky = _table(["run", "instances whose tests flaked while judging"],
                   [[s["run"], ", ".join(s.get("flaky") or []) or "none"] for s in summaries])
    said = "".join(f"<li>{html.escape(line)}</li>" for line in comparisons) or "<li>one run: nothing to compare</li>"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>monkeys report: {html.escape(', '.join(s['run'] for s in summaries))}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px}}th{{background:#f4f4f4}}</style></head><body>
<h1>monkeys report</h1>
{overview}
<p>Three coverages: <b>coverage</b> over the tasks with at least k judged attempts; <b>all tasks</b> over every
task the run was asked to cover, a task without any judged attempt counting as unsolved (the paper's
denominator); <b>unguarded</b> with the official resolved verdict, guard flags ignored.</p>
<ul>{definitions}</ul>
<h2>Tasks without verdicts</h2>{missing}
<h2>Gold patch failing in this environment</h2>{gold}
<h2>Coverage vs attempts</h2>
<p>Coverage is the mean unbiased pass@k over tasks with at least k judged attempts (95% bootstrap interval over
tasks); correct means resolved with no guard flag. Dotted: what a user could pick without the hidden tests.</p>
<img src="data:image/png;base64,{coverage_plot(summaries)}">
<p>What each selection method reads:</p><ul>{signals}</ul>
<h2>Guards and statuses</h2>
<p>Flagged attempts never count as solved in coverage; the unguarded column above counts them by the official
verdict.</p>{flagged}{statuses}
<h2>Scaling fits</h2>{fits}
<h2>Cost</h2>{spent}<ul>{said}</ul>
<img src="data:image/png;base64,{cost_plot(summaries)}">
<h2>Per-task solve rates</h2>
<img src="data:image/png;base64,{rates_plot(summaries)}">
<h2>Flaky tasks</h2>{flaky}
<h2>Tasks</h2>{tasks}
</body></html>
"""
