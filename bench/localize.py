"""File-level recall of the ``edit`` scaffold's localisation, and its time per task, on SWE-bench
rows whose repositories are on this machine; no container, no model.

    .venv/bin/python bench/localize.py                                    # the bundled suite
    .venv/bin/python bench/localize.py --rows FILE --mirrors DIR [--repo OWNER/NAME ...]

For each row the repository is read at ``base_commit`` straight from git (``ls-tree`` and
``cat-file --batch``: the same candidate files the scaffold reads in a container), ranked with
:func:`agent.localize.rank_by_content`, and planned with :func:`agent.scaffolds.edit.plan_edit`.
A hit at k: a file the gold patch edits is among the k best files. Also counted: whether the block a
completion would rewrite overlaps a line the gold patch changes.

``--mirrors DIR`` holds bare mirrors laid out ``owner+name/repo`` or any layout images/mirrors.py
knows (``owner__name.git``, ``owner/name.git``, ...); rows of repositories without one are skipped
and counted. Bundled rows (``monkeys-suite/*``) are replayed with harness.suite.materialize. Prints
one line per task, then what it ran on and recall@1/3/5 on its last lines.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from agent.localize import candidate_files, issue_terms, parse_ls_tree, rank_by_content
from agent.scaffolds.edit import decode, plan_edit
from harness.suite import OWNER as SUITE_OWNER, materialize
from images.mirrors import layouts

SUITE_ROWS = Path(__file__).resolve().parents[1] / "images" / "suite" / "tasks.jsonl"
_DIFF_RE = re.compile(r"^diff --git a/(\S+) b/", re.M)
_HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? ", re.M)


@dataclass(frozen=True)
class Result:
    instance_id: str
    repo: str
    gold: tuple[str, ...]
    rank: int | None  # 1-based place of the first gold file among the top 5, None when absent
    block_hit: bool
    block: str
    read_s: float
    localize_s: float


def find_repository(repo: str, mirrors: Path | None) -> Path | None:
    """A local git repository for ``repo``: the bundled suite's replay, or a mirror under ``mirrors``."""
    if repo.startswith(f"{SUITE_OWNER}/"):
        return materialize(repo)
    if mirrors is None:
        return None
    owner, _, name = repo.partition("/")
    for layout in [f"{owner}+{name}/repo", f"{owner}+{name}"] + layouts(repo):
        path = mirrors / layout
        if path.is_dir() and subprocess.run(["git", "-C", str(path), "rev-parse", "--git-dir"],
                                            capture_output=True).returncode == 0:
            return path
    return None


def read_tree(git: Path, commit: str) -> dict[str, bytes]:
    """The candidate files at ``commit``, path -> bytes, as the scaffold would rank them."""
    listing = subprocess.run(["git", "-C", str(git), "ls-tree", "-r", "-l", "-z", "--full-tree", commit],
                             capture_output=True, text=True, check=True).stdout
    paths = candidate_files([(p, size) for p, size, _ in parse_ls_tree(listing)])
    batch = subprocess.run(["git", "-C", str(git), "cat-file", "--batch"], capture_output=True, check=True,
                           input="".join(f"{commit}:{p}\n" for p in paths).encode()).stdout
    files, pos = {}, 0
    for path in paths:
        eol = batch.index(b"\n", pos)
        header = batch[pos:eol].split()
        size = int(header[2])
        files[path] = batch[eol + 1:eol + 1 + size]
        pos = eol + 1 + size + 1
    return files


def gold_lines(patch: str) -> dict[str, set[int]]:
    """Per file the gold patch edits, the 0-based lines of the old file its hunks cover."""
    lines: dict[str, set[int]] = {}
    chunks = _DIFF_RE.split(patch)
    for path, body in zip(chunks[1::2], chunks[2::2]):
        covered = lines.setdefault(path, set())
        for m in _HUNK_RE.finditer(body):
            start, count = int(m.group(1)), int(m.group(2) or 1)
            covered.update(range(start - 1, start - 1 + max(count, 1)))
    return lines


def run_row(row: dict, git: Path) -> Result:
    started = time.perf_counter()
    raw = read_tree(git, row["base_commit"])
    corpus = {p: decode(b) for p, b in raw.items()}
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    problem = row["problem_statement"]
    ranked = [r.path for r in rank_by_content(issue_terms(problem), problem, corpus, limit=5)]
    plan = plan_edit(problem, corpus)
    localize_s = time.perf_counter() - started
    gold = gold_lines(row["patch"])
    rank = next((i + 1 for i, p in enumerate(ranked) if p in gold), None)
    block, hit = "-", False
    if plan.target is not None:
        span = plan.target.span
        block = f"{plan.target.path}:{span.start + 1}-{span.end} {span.kind.value} {span.name}"
        hit = bool(gold.get(plan.target.path, set()) & set(range(span.start, span.end)))
    return Result(row["instance_id"], row["repo"], tuple(gold), rank, hit, block, read_s, localize_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=Path, default=SUITE_ROWS, help="SWE-bench rows, JSONL (default: the bundled suite)")
    parser.add_argument("--mirrors", type=Path, help="folder of bare git mirrors (owner+name/repo, owner__name.git, ...)")
    parser.add_argument("--repo", action="append", default=[], help="only rows of this repository (repeatable)")
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in args.rows.read_text().splitlines() if line.strip()]
    if args.repo:
        rows = [r for r in rows if r["repo"] in args.repo]
    found: dict[str, Path | None] = {}
    results, skipped = [], Counter()
    for row in rows:
        if row["repo"] not in found:
            found[row["repo"]] = find_repository(row["repo"], args.mirrors)
        git = found[row["repo"]]
        if git is None:
            skipped[row["repo"]] += 1
            continue
        result = run_row(row, git)
        results.append(result)
        print(f"{result.instance_id:40} rank {result.rank or '-':>2}  block {'hit ' if result.block_hit else 'miss'} "
              f"{result.block[:70]:70}  read {result.read_s:5.2f}s  localize {result.localize_s:5.2f}s"
              + ("" if result.rank else f"  gold {', '.join(result.gold)}"), flush=True)
    if skipped:
        print(f"skipped {sum(skipped.values())} rows of {len(skipped)} repositories without a mirror in {args.mirrors}")
    if not results:
        print("ran on no instance: give --mirrors with a mirror of a repository in --rows", file=sys.stderr)
        return 2
    repos = Counter(r.repo for r in results)
    n = len(results)
    print(f"ran on {n} instances of {args.rows}: " + ", ".join(f"{repo} {count}" for repo, count in sorted(repos.items())))
    times = [r.localize_s for r in results]
    print(f"localize per task: median {statistics.median(times):.2f}s, max {max(times):.2f}s "
          f"(reading the files from git: median {statistics.median(r.read_s for r in results):.2f}s); "
          f"completion block overlaps a gold hunk: {sum(r.block_hit for r in results)}/{n}")
    recall = {k: sum(1 for r in results if r.rank and r.rank <= k) / n for k in (1, 3, 5)}
    print("file-level recall@1 {:.2f}  recall@3 {:.2f}  recall@5 {:.2f}".format(recall[1], recall[3], recall[5]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
