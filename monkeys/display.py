"""What the command shows: results on stdout (``out``), progress and problems on stderr (``err``, so
--json output on stdout stays clean), the one JSON printer, progress bars, and the live displays of
image builds and pulls."""

from __future__ import annotations

import json
import os
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from images.build import BuildStatus, ImageKind, ImageResult, Reporter
from images.pull import PullReporter, PullStatus

# Width of a console that is not a terminal (piped, or redirected to a file). There is no screen to
# fit, and at rich's fallback of 80 columns tables cut instance ids, image names and headers with an
# ellipsis. Tables only grow to their content's width, so this is a ceiling, not a padding.
PIPED_WIDTH = 1000


def _console(**options) -> Console:
    console = Console(highlight=False, **options)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = PIPED_WIDTH
    return console


out = _console()
err = _console(stderr=True, soft_wrap=True)


def print_json(data) -> None:
    """Print ``data`` as indented JSON on stdout (values JSON lacks, such as paths, as strings)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def progress_bars(*, with_stats: bool = False) -> Progress:
    """A progress display on stderr: spinner, description, bar, done of total, elapsed time.
    ``with_stats`` adds a column showing each bar's ``stats`` field (give it in ``add_task``)."""
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    if with_stats:
        columns.append(TextColumn("{task.fields[stats]}"))
    columns.append(TimeElapsedColumn())
    # Stats change with every event: four redraws a second (rich's default is ten) keep them readable.
    return Progress(*columns, console=err, transient=False, refresh_per_second=4 if with_stats else 10)


class BuildDisplay(Reporter):
    """Image builds as they run: one bar over all images, a row per image being built showing its
    latest build line, and a printed line per image built (or failed) rather than reused."""

    def __init__(self, view: Progress, total: int):
        self.view = view
        self.bar = view.add_task("images", total=total)
        self.rows: dict[str, int] = {}

    def start(self, name: str, kind: ImageKind) -> None:
        self.rows[name] = self.view.add_task(f"  {kind.value} {name}", total=None)

    def line(self, name: str, text: str) -> None:
        if name in self.rows:
            self.view.update(self.rows[name], description=f"  {name}: {text[:70]}")

    def done(self, result: ImageResult) -> None:
        if result.name in self.rows:
            self.view.remove_task(self.rows.pop(result.name))
        if result.status is not BuildStatus.REUSED:
            colour = "red" if result.status is BuildStatus.FAILED else "green"
            self.view.console.print(f"[{colour}]{result.status.value}[/] {result.name} ({result.seconds:.1f} s)")
        self.view.advance(self.bar)


class PullDisplay(BuildDisplay, PullReporter):
    """The build display, plus each image's download (bytes over every layer) while it runs."""

    def start(self, name: str, kind: ImageKind) -> None:
        self.rows[name] = self.view.add_task(f"  pull {name}", total=None)

    def progress(self, name: str, done: int, total: int) -> None:  # type: ignore[override]
        if name in self.rows:
            self.view.update(self.rows[name], completed=done, total=total or None)

    def done(self, result) -> None:
        if result.name in self.rows:
            self.view.remove_task(self.rows.pop(result.name))
        if result.status is not PullStatus.PRESENT:
            colour = "green" if result.ok else "red"
            self.view.console.print(f"[{colour}]{result.status.value}[/] {result.name} ({result.seconds:.1f} s)")
        self.view.advance(self.bar)
