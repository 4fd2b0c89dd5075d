"""Command round trip through a persistent shell session against a ``docker exec`` per command, on
one container of a bundled task image, each a ratio against a baseline from the same run.

    .venv/bin/python bench/session.py [-n 200] [--containers 15] [--task monkeys-suite__textkit-3]

Needs the bundled images (`monkeys images build`). Prints:

1. per command (``echo hi``, ``pwd``, ``ls``, ``git status --short``, ``true``), ``-n`` runs each,
   interleaved: the round trip through ``ShellSession.run`` and through ``Container.exec`` (one
   ``docker exec`` each), median and p90 in ms (goal: session median at most 2 ms);
2. fresh container to first command: from entering ``runtime.open(image)`` to the first ``echo``
   answered by a new ``ShellSession``, median over ``--containers`` containers (goal: at most 0.6 s),
   split into container create+start, shell start, first echo.

The last line is the headline ratio (docker exec over session, median round trip).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from agent.session import REPO_DIR, CommandEnd, ShellSession
from harness import engine
from harness.containers import ContainerRuntime
from harness.image_names import image_name
from harness.tasks import load_tasks

COMMANDS = ["echo hi", "pwd", "ls", "git status --short", "true"]
BUILTINS = ["echo hi", "pwd", "true"]  # no process started: the round trip is the protocol alone


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) >= 2 else values[0]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}" if seconds < 0.01 else f"{seconds * 1000:.1f}"


def round_trips(runtime: ContainerRuntime, image: str, n: int) -> dict[str, dict[str, list[float]]]:
    """{command: {"session": [s], "exec": [s]}}, interleaved command by command."""
    times = {c: {"session": [], "exec": []} for c in COMMANDS}
    with runtime.open(image, kind="bench") as container:
        session = ShellSession(container)
        try:
            # The same answers both ways, or the comparison means nothing.
            for command in COMMANDS:
                a = session.run(command, timeout=30)
                b = container.exec(command, timeout=30, workdir=REPO_DIR)
                if a.end is not CommandEnd.EXITED or a.exit_code != 0 or b.exit_code != 0 \
                        or a.output.rstrip("\n") != b.output.rstrip("\n"):
                    sys.exit(f"{command!r}: session gave {a.exit_code} {a.output!r}, exec gave {b.exit_code} {b.output!r}")
            for _ in range(n):
                for command in COMMANDS:
                    started = time.perf_counter()
                    session.run(command, timeout=30)
                    times[command]["session"].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    container.exec(command, timeout=30, workdir=REPO_DIR)
                    times[command]["exec"].append(time.perf_counter() - started)
        finally:
            session.close()
    return times


def fresh_containers(runtime: ContainerRuntime, image: str, count: int) -> list[tuple[float, float, float]]:
    """(container create+start, shell start, first echo) seconds for ``count`` fresh containers."""
    spans = []
    for _ in range(count):
        t0 = time.perf_counter()
        with runtime.open(image, kind="bench") as container:
            t1 = time.perf_counter()
            session = ShellSession(container)
            t2 = time.perf_counter()
            result = session.run("echo hi", timeout=30)
            t3 = time.perf_counter()
            if result.output.strip() != "hi":
                sys.exit(f"first command in a fresh container answered {result.output!r}")
            session.close()
        spans.append((t1 - t0, t2 - t1, t3 - t2))
    return spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=200, help="runs of each command each way (default 200)")
    parser.add_argument("--containers", type=int, default=15, help="fresh containers timed (default 15)")
    parser.add_argument("--task", default="monkeys-suite__textkit-3")
    args = parser.parse_args()

    tasks = {t.instance_id: t for t in load_tasks().tasks}
    if args.task not in tasks:
        sys.exit(f"no task {args.task} in the bundled suite")
    image = image_name(tasks[args.task])
    client = engine.connect()
    try:
        client.images.get(image)
    except Exception:
        sys.exit(f"image {image} is not here: run `monkeys images build` first")
    runtime = ContainerRuntime(client, "bench-session")
    runtime.reap()

    times = round_trips(runtime, image, args.n)
    print(f"round trip per command, {args.n} runs each way, interleaved, on one {args.task} container (ms)")
    print(f"{'command':<22}{'session med':>12}{'p90':>8}{'exec med':>11}{'p90':>8}{'exec/session':>14}")
    for command in COMMANDS:
        s, e = times[command]["session"], times[command]["exec"]
        print(f"{command:<22}{ms(statistics.median(s)):>12}{ms(p90(s)):>8}{ms(statistics.median(e)):>11}"
              f"{ms(p90(e)):>8}{statistics.median(e) / statistics.median(s):>13.1f}x")
    all_s = [t for c in COMMANDS for t in times[c]["session"]]
    all_e = [t for c in COMMANDS for t in times[c]["exec"]]
    s_med, e_med = statistics.median(all_s), statistics.median(all_e)
    print(f"{'all':<22}{ms(s_med):>12}{ms(p90(all_s)):>8}{ms(e_med):>11}{ms(p90(all_e)):>8}{e_med / s_med:>13.1f}x")
    b_s = [t for c in BUILTINS for t in times[c]["session"]]
    b_e = [t for c in BUILTINS for t in times[c]["exec"]]
    print(f"{'builtins only':<22}{ms(statistics.median(b_s)):>12}{ms(p90(b_s)):>8}{ms(statistics.median(b_e)):>11}"
          f"{ms(p90(b_e)):>8}{statistics.median(b_e) / statistics.median(b_s):>13.1f}x")
    print(f"session round trip median {ms(s_med)} ms over all five commands, {ms(statistics.median(b_s))} ms for "
          f"the builtins (goal <= 2 ms: {'met' if s_med <= 0.002 else 'NOT met'})")

    spans = fresh_containers(runtime, image, args.containers)
    totals = [sum(s) for s in spans]
    fresh = statistics.median(totals)
    print(f"fresh container to first command, {len(spans)} containers (s): median {fresh:.3f}, p90 {p90(totals):.3f}; "
          f"of which create+start {statistics.median(s[0] for s in spans):.3f}, "
          f"shell start {statistics.median(s[1] for s in spans):.3f}, "
          f"first echo {statistics.median(s[2] for s in spans):.4f} (medians; goal <= 0.6 s: "
          f"{'met' if fresh <= 0.6 else 'NOT met'})")
    print(f"ratio docker-exec/session median round trip: {e_med / s_med:.1f}x (session {ms(s_med)} ms, "
          f"exec {ms(e_med)} ms); fresh container to first command median {fresh:.2f} s")


if __name__ == "__main__":
    main()
