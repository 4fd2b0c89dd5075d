"""``monkeys images build`` and ``monkeys images pull``: the images the tasks run in, made here or
fetched ahead of a run."""

from __future__ import annotations

import argparse
import json
import os
import re
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import docker.errors
from rich.markup import escape
from rich.table import Table

from harness import engine
from harness.config import cache_dir
from harness.image_names import RELEASES, Distribution, image_name, instance_spec
from images.build import DEFAULT_MIRROR, DEFAULT_REGISTRY, DEFAULT_UBUNTU_MIRROR, LABEL, ImageBuilder, image_exists
from images.official_env import derive_all
from images.mirrors import Mirrors
from images.pull import PullStatus, pull_images
from images.recipes import read_recipes, with_recipes
from monkeys import options
from monkeys.display import BuildDisplay, PullDisplay, err, out, print_json, progress_bars
from monkeys.options import SharedOptions


def cmd_images_build(args) -> int:
    tasks = options.load(args).tasks
    mirrors = Mirrors(args.repo_mirror)
    client = engine.connect()
    # Rows of the official repositories get their environments from the official spec table (read
    # from the repository at environment_setup_commit); a recipes file overrides what it names.
    # An official image already here is used as it is (one monkeys built is remade if its recipe changed).
    derived, underived = derive_all([t for t in tasks if not _official_here(client, image_name(t))], mirrors)
    tasks = with_recipes(tasks, read_recipes(args.recipes) if args.recipes else None, derived)
    registry = None if args.registry in ("", "none") else args.registry
    # Bases and envs are shared; the total is an upper bound refined as results arrive.
    with progress_bars() as progress:
        display = BuildDisplay(progress, total=len(tasks) + 2 * len({t.env_recipe for t in tasks}))
        builder = ImageBuilder(client, mirrors, registry=registry, mirror=args.mirror,
                               ubuntu_mirror=args.ubuntu_mirror, base_images=dict(args.base_image),
                               workers=args.workers, reporter=display, log_dir=cache_dir() / "build-logs")
        report = builder.build(tasks)
        progress.update(display.bar, total=len(report.results), completed=len(report.results))
    departures = deviations(client, tasks, derived)
    if args.json:
        print_json({"counts": report.counts(), "images": [asdict(r) for r in report.results],
                    "deviations": departures, "not_derived": underived})
    else:
        table = Table("image", "kind", "status", "seconds", "for",
                      title="images: " + ", ".join(f"{n} {s}" for s, n in sorted(report.counts().items())))
        for r in report.results:
            table.add_row(r.name, r.kind.value, r.status.value, f"{r.seconds:.1f}", r.for_what)
        out.print(table)
        for env, lines in departures.items():
            out.print(f"[bold]{escape(env)}[/] departs from the official spec:")
            for line in lines:
                out.print(f"  - {escape(line)}")
    for failure in report.failed:
        err.print(f"[red]error:[/] {escape(failure.error)}")
    # A row whose environment could not be derived is an error only where no image stands in for it.
    for instance_id, why in underived.items():
        err.print(f"[red]error:[/] no environment derived: {escape(why)}")
    return 1 if report.failed or underived else 0


def _official_here(client, name: str) -> bool:
    return image_exists(client, name) and LABEL not in (client.images.get(name).labels or {})


def deviations(client, tasks, derived) -> dict[str, list[str]]:
    """For each env derived from the official spec table: how it departs from the spec, as derived
    (conda packages and their PyPI stand-ins) and as built (packages PyPI lacked, date bounds pip
    could not apply), the latter read from the env image's labels."""
    found: dict[str, list[str]] = {}
    for task in tasks:
        if task.instance_id not in derived or task.env_recipe is None:
            continue
        env = instance_spec(task).env.name
        if env in found:
            continue
        lines = list(derived[task.instance_id].deviations)
        if task.env_recipe != derived[task.instance_id].recipe:
            lines.append(f"the recipes file overrides part of it ({task.repo} {task.version})")
        try:
            labels = client.images.get(env).labels or {}
        except docker.errors.DockerException:
            labels = {}
        skipped = json.loads(labels.get("monkeys.skipped") or "[]")
        if skipped:
            lines.append(f"would not install here, left out: {', '.join(skipped)}")
        if labels.get("monkeys.resolution", "").startswith("unbounded"):
            lines.append(f"packages resolved against today's PyPI ({labels['monkeys.resolution']})")
        found[env] = lines
    return {env: lines for env, lines in found.items() if lines}


def cmd_images_pull(args) -> int:
    tasks = options.load(args).tasks
    names = list(dict.fromkeys(image_name(t) for t in tasks))
    client = engine.connect()
    with progress_bars() as progress:
        display = PullDisplay(progress, total=len(names))
        results = pull_images(client, names, registry=args.registry or None, reporter=display,
                              retries=args.retries, workers=args.workers)
    if args.json:
        print_json([asdict(r) for r in results])
    else:
        counts = Counter(r.status.value for r in results)
        table = Table("image", "status", "MB", "seconds", "tries",
                      title="images: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        for r in results:
            table.add_row(r.name, r.status.value, f"{r.bytes / 1e6:.0f}", f"{r.seconds:.1f}", str(r.attempts))
        out.print(table)
    bad = [r for r in results if r.status not in (PullStatus.PRESENT, PullStatus.PULLED)]
    for r in bad:
        err.print(f"[yellow]{r.status.value}[/] {escape(r.error)}")
    if bad:
        err.print(f"{len(bad)} of {len(names)} images are missing; runs go on without those tasks "
                  f"(or build them: monkeys images build --recipes FILE)")
    return 1 if bad else 0


def _shipped(distribution: Distribution) -> str:
    return ", ".join(r.python for r in RELEASES if r.distribution is distribution)


def base_image_option(text: str) -> tuple[str, str]:
    """``--base-image PYTHON=IMAGE`` as (python, image); a malformed one is refused before any build."""
    python, sep, image = text.partition("=")
    python, image = python.strip(), image.strip()
    if not sep or not re.fullmatch(r"\d+\.\d+", python) or not image:
        raise argparse.ArgumentTypeError(
            f"--base-image {text!r}: expected PYTHON=IMAGE with a major.minor version, e.g. 3.7=python:3.7-slim")
    return python, image


def add_parsers(commands, shared: SharedOptions) -> None:
    """``images build`` and ``images pull``."""
    images = commands.add_parser("images", help="build or pull task images")
    actions = images.add_subparsers(dest="images_command", required=True, metavar="ACTION")
    p = actions.add_parser(
        "build", parents=[shared.workers, shared.task_set, shared.json],
        help="build (or reuse) every image the tasks need: base, environment, one per task")
    p.add_argument("--registry", default=os.environ.get("MONKEYS_REGISTRY", DEFAULT_REGISTRY),
                   help="where python:<version>-slim bases are pulled from, or 'none' to build them from the packages "
                        f"of the Debian or Ubuntu release that ships their Python (default: $MONKEYS_REGISTRY or {DEFAULT_REGISTRY})")
    p.add_argument("--mirror", default=os.environ.get("MONKEYS_DEBIAN_MIRROR", DEFAULT_MIRROR),
                   help=f"Debian mirror for registry-free bases of the Pythons Debian ships ({_shipped(Distribution.DEBIAN)}) "
                        f"(default: $MONKEYS_DEBIAN_MIRROR or {DEFAULT_MIRROR})")
    p.add_argument("--ubuntu-mirror", default=os.environ.get("MONKEYS_UBUNTU_MIRROR", DEFAULT_UBUNTU_MIRROR),
                   help=f"Ubuntu mirror for registry-free bases of the Pythons Ubuntu ships ({_shipped(Distribution.UBUNTU)}) "
                        f"(default: $MONKEYS_UBUNTU_MIRROR or, on this host, {DEFAULT_UBUNTU_MIRROR})")
    p.add_argument("--base-image", type=base_image_option, action="append", default=[], metavar="PYTHON=IMAGE",
                   help="make the base of this Python version from IMAGE (a local image or a registry's) instead of "
                        "pulling or bootstrapping one; git and venv are added where missing. Repeatable. The way to "
                        "build for a Python no release ships (e.g. 3.7=myregistry/python:3.7-slim)")
    p.add_argument("--recipes", type=Path, default=None, metavar="FILE",
                   help="environment recipes per repo and version (TOML), over what the official SWE-bench spec "
                        "table gives rows with no image of their own (and for repositories it does not know); the "
                        "images are tagged with the official names")
    p.add_argument("--repo-mirror", type=Path, action="append", default=[], metavar="DIR",
                   help="a folder of bare git mirrors (owner__name.git); repeatable. Repositories found in none "
                        "are cloned once into the cache")
    p.set_defaults(func=cmd_images_build)
    p = actions.add_parser(
        "pull", parents=[shared.workers, shared.task_set, shared.json],
        help="fetch the tasks' prebuilt images ahead of a run (an image already here is kept as it is)")
    p.add_argument("--registry", default=os.environ.get("MONKEYS_PULL_REGISTRY"), metavar="HOST[:PORT]",
                   help="pull from this registry or mirror instead of Docker Hub (default: $MONKEYS_PULL_REGISTRY)")
    p.add_argument("--retries", type=int, default=6, help="tries per image when rate-limited (default 6)")
    p.set_defaults(func=cmd_images_pull)
