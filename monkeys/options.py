"""The options several commands share, declared once: --workers, the task-set options (where the
rows come from and which of them to use) and --json; and loading the task set they name."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape

from harness.subset import Subset, ids_or_files, select
from harness.tasks import BUNDLED_NAME, LoadResult, load_tasks
from images.provision import NodeImages
from monkeys.display import err


@dataclass(frozen=True)
class SharedOptions:
    """Parent parsers (argparse ``parents=[...]``) for the shared options; each command lists the
    ones it takes."""

    workers: argparse.ArgumentParser
    task_set: argparse.ArgumentParser
    json: argparse.ArgumentParser
    cluster: argparse.ArgumentParser


def shared_options() -> SharedOptions:
    """Fresh parent parsers for one command-line parser (argparse shares a parent's actions with
    every parser made from it, so each ``build_parser`` makes its own)."""
    return SharedOptions(workers=_workers(), task_set=_task_set(), json=_json(), cluster=_cluster())


def _workers() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="how many things run at once (default: the number of CPUs)")
    return parser


def _json() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def _cluster() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("Ray cluster")
    group.add_argument("--cluster", metavar="ADDRESS", default=os.environ.get("MONKEYS_CLUSTER") or None,
                       help="run the work as tasks on this Ray cluster (auto: the one this machine belongs to; "
                            "default $MONKEYS_CLUSTER), each on the Docker engine of the node it lands on; every node "
                            "needs Docker and monkeys[ray]. The run store and the cache stay here; Ray packs the "
                            "work by its declared CPUs and memory (docs/scale.md)")
    group.add_argument("--registry", default=os.environ.get("MONKEYS_PULL_REGISTRY"), metavar="HOST[:PORT]",
                       help="with --cluster: a node without a task's image pulls it from this registry (default: "
                            "$MONKEYS_PULL_REGISTRY) before building it from the task's recipe")
    group.add_argument("--repo-mirror", type=Path, action="append", default=[], metavar="DIR",
                       help="with --cluster: folders of git mirrors a node builds real repositories' images from "
                            "(the same path on every node)")
    return parser


def node_images(args) -> NodeImages:
    """How a cluster node gets an image it lacks, as the cluster options say."""
    return NodeImages(registry=args.registry or None, repo_mirrors=tuple(args.repo_mirror))


def _task_set() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("task set")
    group.add_argument("--tasks", default=None, metavar="PATH_OR_NAME",
                       help=f"a JSON/JSONL file of SWE-bench rows, a folder holding test.jsonl, a name under "
                            f"$MONKEYS_DATA, swe-bench-lite / swe-bench-verified / swe-bench (downloaded once, "
                            f"then read from the cache), or any hub dataset (default: the bundled suite, {BUNDLED_NAME})")
    group.add_argument("--skip-bad", action="store_true", help="skip rows that do not parse (each is reported)")
    group.add_argument("--instances", nargs="+", metavar="ID_OR_FILE", default=[],
                       help="only these instance ids (or files of ids, one a line)")
    group.add_argument("--repo", nargs="+", metavar="OWNER/NAME", default=[], help="only tasks from these repositories")
    group.add_argument("--match", metavar="REGEX", default=None, help="only instance ids this regular expression finds")
    group.add_argument("--exclude", nargs="+", metavar="ID_OR_FILE", default=[],
                       help="leave out these ids or the ids in these files (e.g. the paper's 34 flaky instances)")
    group.add_argument("--sample", type=int, default=None, metavar="N",
                       help="a random N of the tasks left after the other filters")
    group.add_argument("--sample-seed", type=int, default=0, metavar="SEED", help="seed of --sample (default 0)")
    return parser


def _subset(args) -> Subset:
    """The filters the task-set options ask for (none given: an empty subset, every task)."""
    ids, _ = ids_or_files(getattr(args, "instances", []) or [])
    exclude, files = ids_or_files(getattr(args, "exclude", []) or [])
    return Subset(ids=ids, repos=tuple(getattr(args, "repo", []) or ()), pattern=getattr(args, "match", None),
                  exclude=exclude, sample=getattr(args, "sample", None), seed=getattr(args, "sample_seed", 0),
                  excluded_from=files)


def load(args) -> LoadResult:
    """The task set the options name, filtered; raises TaskLoadError or SubsetError."""
    result = load_tasks(args.tasks, skip_bad=getattr(args, "skip_bad", False))
    for problem in result.skipped:
        err.print(f"[yellow]skipped[/] {escape(str(problem))}")
    chosen = _subset(args)
    if not chosen.empty:
        kept = select(result.tasks, chosen)
        err.print(f"[dim]{len(kept)} of {len(result.tasks)} tasks from {escape(result.source)}[/]")
        result.tasks = kept
    return result
