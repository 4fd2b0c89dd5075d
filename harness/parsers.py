"""Log parsers: pure functions from a test run's output to {test id: status}, keyed by a row's
``log_parser``. This issue brings pytest's format; the other SWE-bench Lite formats join the registry
with the SWE-bench work."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable

StatusMap = dict[str, "TestStatus"]


class TestStatus(str, enum.Enum):
    """A test's outcome, with the names pytest's short summary uses."""

    __test__ = False  # not a pytest test class

    PASSED = "PASSED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    ERROR = "ERROR"
    XFAIL = "XFAIL"
    XPASS = "XPASS"


# `pytest -rA` short summary lines: "PASSED tests/test_a.py::test_x", "FAILED tests/b.py::t - Assert...".
_PYTEST_LINE = re.compile(r"^(PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS) (\S+?)(?: - .*)?$")


def parse_pytest(log: str) -> StatusMap:
    """Statuses from the short test summary of ``pytest -rA``.

    SKIPPED summary lines name a file and line, not a test id ("SKIPPED [1] tests/a.py:3: why"), so
    skips are seen only where pytest names the test; a test missing from the map counts as failed
    in grading, as the official harness does.
    """
    statuses: StatusMap = {}
    for raw in log.splitlines():
        match = _PYTEST_LINE.match(raw.strip())
        if match and not match.group(2).startswith("["):
            statuses[match.group(2)] = TestStatus(match.group(1))
    return statuses


PARSERS: dict[str, Callable[[str], StatusMap]] = {
    "pytest": parse_pytest,
}


def get_parser(name: str | None) -> Callable[[str], StatusMap]:
    """The parser a row names; pytest's where the row names none."""
    key = name or "pytest"
    try:
        return PARSERS[key]
    except KeyError:
        raise KeyError(f"no log parser named {key!r}; known: {', '.join(sorted(PARSERS))}") from None
