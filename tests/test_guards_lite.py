"""Guards on SWE-bench Lite: no gold patch is flagged, honest runs of every Lite log format raise no
flag (ids cut at spaces, tests that print inner pytest sessions, django docstrings and sympy names
that repeat), and forged runs in those formats still do."""

from __future__ import annotations

import pytest

import test_parsers as excerpts
from harness.evalscript import TestRun, parser_for, patched_test_files
from harness.grading import status_of
from harness.guards import GuardFlag, patch_flags, run_flags, skipped_tests
from harness.parsers import (TestStatus, get_parser, parse_django, parse_matplotlib, parse_pytest, parse_pytest_options,
                             parse_pytest_v2, parse_seaborn, parse_sympy)
from harness.patches import files
from harness.tasks import load_tasks

_BROKEN = {TestStatus.FAILED, TestStatus.ERROR}


def _flags(log: str, parse, expected=None, exit_code=None) -> set[GuardFlag]:
    """run_flags on one run, with the skips the gold audit would find in it (as harness/evaluate.py
    judges a gold patch). By default every test the log reports is expected, and the exit code is
    the runner's: 1 when the log reports a failure."""
    statuses = parse(log)
    expected = list(statuses) if expected is None else expected
    if exit_code is None:
        exit_code = 1 if _BROKEN & set(statuses.values()) else 0
    run = TestRun(statuses, exit_code, log)
    return run_flags([run], expected, parse, skipped_tests(run, expected))


@pytest.fixture(scope="module")
def lite(lite_rows):
    tasks = load_tasks(lite_rows).tasks
    assert len(tasks) == 300
    return tasks


# -- patch_flags ------------------------------------------------------------------------------------------

def test_no_lite_gold_patch_is_flagged(lite):
    flagged = {}
    for task in lite:
        existing, created = patched_test_files(task)  # the protected files, as evaluate's judge has them
        flags = patch_flags(files(task.patch), existing + created)
        if flags:
            flagged[task.instance_id] = sorted(f.value for f in flags)
    assert flagged == {}


def test_pytests_own_skip_machinery_is_source_not_a_skip(lite):
    # The gold patch of pytest-dev__pytest-8906 edits how pytest.skip behaves at module level.
    task = next(t for t in lite if t.instance_id == "pytest-dev__pytest-8906")
    assert any("skip" in line for d in files(task.patch) for line in d.added_lines)
    assert patch_flags(files(task.patch), sum(patched_test_files(task), [])) == set()


# -- run_flags on honest logs --------------------------------------------------------------------------------

# The excerpts test_parsers checks against the official parsers, each read by its own parser.
EXCERPT_PARSERS = {
    "pytest": parse_pytest, "pytest_dev": parse_pytest, "xarray": parse_pytest, "flask": parse_pytest,
    "sqlfluff": parse_pytest, "requests": parse_pytest_options, "pylint": parse_pytest_options,
    "pydicom": parse_pytest_options, "astropy": parse_pytest_v2, "sklearn_old": parse_pytest_v2,
    "sphinx": parse_pytest_v2, "seaborn": parse_seaborn, "matplotlib": parse_matplotlib,
    "django": parse_django, "sympy": parse_sympy,
}


@pytest.mark.parametrize("name", sorted(EXCERPT_PARSERS))
def test_the_parser_excerpts_are_honest_runs(name):
    assert _flags(excerpts.EXCERPTS[name], EXCERPT_PARSERS[name]) == set()


# matplotlib__matplotlib-23299: parametrized ids with spaces, which the parser cuts, so six tests
# report as three ids; "test_legend_colors[same" is one PASS_TO_PASS test of the row.
MATPLOTLIB_CUT_IDS = """\
============================= test session starts ==============================
platform linux -- Python 3.11.9, pytest-8.2.2, pluggy-1.5.0
rootdir: /testbed
configfile: pytest.ini
plugins: xdist-3.6.1, cov-5.0.0, rerunfailures-14.0, timeout-2.3.1
collected 11 items

lib/matplotlib/tests/test_rcparams.py .........s.                        [100%]

==================================== PASSES ====================================
=========================== short test summary info ============================
PASSED lib/matplotlib/tests/test_rcparams.py::test_rcparams
PASSED lib/matplotlib/tests/test_rcparams.py::test_legend_colors[same facecolor]
PASSED lib/matplotlib/tests/test_rcparams.py::test_legend_colors[inherited facecolor]
PASSED lib/matplotlib/tests/test_rcparams.py::test_legend_colors[different facecolor]
PASSED lib/matplotlib/tests/test_rcparams.py::test_legend_colors[same edgecolor]
PASSED lib/matplotlib/tests/test_rcparams.py::test_legend_colors[inherited edgecolor]
PASSED lib/matplotlib/tests/test_rcparams.py::test_legend_colors[different edgecolor]
PASSED lib/matplotlib/tests/test_rcparams.py::test_validator_valid[validate_strlist-aardvark, zebra-target1]
PASSED lib/matplotlib/tests/test_rcparams.py::test_validator_valid[validate_strlist-aardvark,  zebra-target2]
PASSED lib/matplotlib/tests/test_rcparams.py::test_no_backend_reset_rccontext
SKIPPED [1] lib/matplotlib/tests/test_rcparams.py:458: Qt is not installed
=================== 10 passed, 1 skipped in 2.87s ====================
"""

MATPLOTLIB_EXPECTED = [
    "lib/matplotlib/tests/test_rcparams.py::test_no_backend_reset_rccontext",
    "lib/matplotlib/tests/test_rcparams.py::test_rcparams",
    "lib/matplotlib/tests/test_rcparams.py::test_legend_colors[same",
    "lib/matplotlib/tests/test_rcparams.py::test_legend_colors[inherited",
    "lib/matplotlib/tests/test_rcparams.py::test_legend_colors[different",
    "lib/matplotlib/tests/test_rcparams.py::test_validator_valid[validate_strlist-aardvark,",
]


def test_parametrized_ids_cut_at_a_space_are_not_reported_twice():
    assert _flags(MATPLOTLIB_CUT_IDS, parse_matplotlib, MATPLOTLIB_EXPECTED) == set()
    # One of a pair failing (the empty patch, say) is a failed run, nothing more.
    failing = MATPLOTLIB_CUT_IDS.replace("PASSED lib/matplotlib/tests/test_rcparams.py::test_legend_colors[same edgecolor]",
                                         "FAILED lib/matplotlib/tests/test_rcparams.py::test_legend_colors[same edgecolor] - "
                                         "AssertionError: assert 'r' == 'b'")
    failing = failing.replace("10 passed, 1 skipped", "1 failed, 9 passed, 1 skipped")
    assert _flags(failing, parse_matplotlib, MATPLOTLIB_EXPECTED, exit_code=1) == set()


# pytest-dev/pytest at 5.4 (pytest-dev__pytest-7432, -5227): the tests run pytest on temporary files
# and -rA shows what they printed, so the log carries inner sessions' progress, result and summary
# lines, "1 skipped", live-log lines where the status starts a line ("PASSED  [100%]", which the row
# expects as the pseudo-test "[100%]"; "FAILED  [ 50%]", read as a failed "["), a failing inner test.
PYTEST_DEV_INNER_SESSIONS = """\
============================= test session starts ==============================
platform linux -- Python 3.9.19, pytest-5.4.1.dev522+gb6e1a5b6e, py-1.11.0, pluggy-0.13.1
rootdir: /testbed, inifile: tox.ini
collected 5 items

testing/test_skipping.py ....                                            [ 80%]
testing/logging/test_reporting.py .                                      [100%]

==================================== PASSES ====================================
______________________ TestXFail.test_xfail_simple[True] _______________________
----------------------------- Captured stdout call -----------------------------
============================= test session starts ==============================
platform linux -- Python 3.9.19, pytest-5.4.1.dev522+gb6e1a5b6e, py-1.11.0, pluggy-0.13.1
rootdir: /tmp/pytest-of-root/pytest-0/test_xfail_simple0
collected 1 item

test_xfail_simple.py x                                                   [100%]

=========================== short test summary info ============================
XFAIL test_xfail_simple.py::test_func
============================== 1 xfailed in 0.01s ==============================
___________ TestXFail.test_xfail_run_with_skip_mark[test_input1-expected1] ___________
----------------------------- Captured stdout call -----------------------------
============================= test session starts ==============================
platform linux -- Python 3.9.19, pytest-5.4.1.dev522+gb6e1a5b6e, py-1.11.0, pluggy-0.13.1
rootdir: /tmp/pytest-of-root/pytest-0/test_xfail_run_with_skip_mark1
collected 1 item

test_sample.py s                                                         [100%]

=========================== short test summary info ============================
SKIPPED [1] test_sample.py:2: unconditional skip
============================== 1 skipped in 0.01s ==============================
_________ TestSkipif.test_skipif_reporting["hasattr(sys, 'platform')"] _________
----------------------------- Captured stdout call -----------------------------
============================= test session starts ==============================
platform linux -- Python 3.9.19, pytest-5.4.1.dev522+gb6e1a5b6e, py-1.11.0, pluggy-0.13.1
rootdir: /tmp/pytest-of-root/pytest-0/test_skipif_reporting0
collecting ... collected 2 items

test_foo.py::test_that PASSED                                            [ 50%]
test_foo.py::test_this FAILED                                            [100%]

=================================== FAILURES ===================================
__________________________________ test_this ___________________________________

    def test_this():
>       assert 0
E       assert 0

test_foo.py:5: AssertionError
=========================== short test summary info ============================
PASSED test_foo.py::test_that
FAILED test_foo.py::test_this - assert 0
========================= 1 failed, 1 passed in 0.03s ==========================
_____________________ test_log_cli_enabled_disabled[True] ______________________
----------------------------- Captured stdout call -----------------------------
============================= test session starts ==============================
platform linux -- Python 3.9.19, pytest-5.4.1.dev522+gb6e1a5b6e, py-1.11.0, pluggy-0.13.1
rootdir: /tmp/pytest-of-root/pytest-0/test_log_cli_enabled_disabled0
collecting ... collected 2 items

test_log_cli_enabled_disabled.py::test_log_cli
-------------------------------- live log call ---------------------------------
CRITICAL root:test_log_cli_enabled_disabled.py:3 critical message logged by test
FAILED                                                                   [ 50%]
test_log_cli_enabled_disabled.py::test_log_cli_ok
-------------------------------- live log call ---------------------------------
CRITICAL root:test_log_cli_enabled_disabled.py:6 another message
PASSED                                                                   [ 50%]
PASSED                                                                   [100%]

=================================== FAILURES ===================================
_________________________________ test_log_cli _________________________________
E       assert 0
=========================== short test summary info ============================
FAILED test_log_cli_enabled_disabled.py::test_log_cli - assert 0
========================= 1 failed, 1 passed in 0.02s ==========================
____________________________ test_importorskip _____________________________
----------------------------- Captured stdout call -----------------------------
PASSED                                                                   [100%]
=========================== short test summary info ============================
PASSED testing/test_skipping.py::TestXFail::test_xfail_simple[True]
PASSED testing/test_skipping.py::TestXFail::test_xfail_run_with_skip_mark[test_input1-expected1]
PASSED testing/test_skipping.py::TestSkipif::test_skipif_reporting["hasattr(sys, 'platform')"]
PASSED testing/test_skipping.py::test_importorskip
PASSED testing/logging/test_reporting.py::test_log_cli_enabled_disabled[True]
============================== 5 passed in 0.35s ===============================
"""

PYTEST_DEV_EXPECTED = [
    "testing/test_skipping.py::TestXFail::test_xfail_run_with_skip_mark[test_input1-expected1]",
    "testing/test_skipping.py::TestXFail::test_xfail_simple[True]",
    "testing/test_skipping.py::TestSkipif::test_skipif_reporting[\"hasattr(sys,",
    "testing/test_skipping.py::test_importorskip",
    "testing/logging/test_reporting.py::test_log_cli_enabled_disabled[True]",
    "[100%]",
    "[",
]


def test_a_pytest_run_whose_tests_print_inner_sessions_is_honest():
    assert parse_pytest(PYTEST_DEV_INNER_SESSIONS)["["] is TestStatus.PASSED  # the last "[ 50%]" line
    assert _flags(PYTEST_DEV_INNER_SESSIONS, parse_pytest, PYTEST_DEV_EXPECTED, exit_code=0) == set()


def test_a_failing_pytest_run_whose_tests_print_inner_sessions_is_honest():
    # The empty patch: the FAIL_TO_PASS test fails, the command exits 1.
    log = PYTEST_DEV_INNER_SESSIONS.replace(
        "PASSED testing/test_skipping.py::TestXFail::test_xfail_run_with_skip_mark[test_input1-expected1]",
        "FAILED testing/test_skipping.py::TestXFail::test_xfail_run_with_skip_mark[test_input1-expected1] - "
        "AssertionError: assert [] == ['*XFAIL*test_foo*']").replace("5 passed", "1 failed, 4 passed")
    assert _flags(log, parse_pytest, PYTEST_DEV_EXPECTED, exit_code=1) == set()


# django's runner (verbosity 2): inherited tests print the same docstring line, so two tests report the
# same id on the same verbatim line; output between "..." and "ok".
DJANGO_INHERITED_DOCSTRINGS = """\
Testing against Django installed in '/testbed/django'
Importing application forms_tests
Skipping setup of unused database(s): other.
Creating test database for alias 'default' ('file:memorydb_default?mode=memory&cache=shared')...
Operations to perform:
  Synchronize unmigrated apps: auth, contenttypes, forms_tests, messages, sessions, staticfiles
  Apply all migrations: admin, sites
Synchronizing apps without migrations:
  Creating tables...
    Running deferred SQL...
Running migrations:
  Applying admin.0001_initial... OK
  Applying sites.0002_alter_domain_unique... OK
System check identified no issues (0 silenced).
test_render (forms_tests.widget_tests.test_select.SelectTest)
Widgets render their choices in order. ... ok
test_render (forms_tests.widget_tests.test_selectmultiple.SelectMultipleTest)
Widgets render their choices in order. ... ok
test_render_none (forms_tests.widget_tests.test_select.SelectTest) ... ok
test_choices_escaping (forms_tests.widget_tests.test_select.SelectTest) ... ok
test_migrate (forms_tests.tests.test_commands.MigrateTests) ... Operations to perform:
  Apply all migrations: forms_tests
ok

----------------------------------------------------------------------
Ran 5 tests in 0.042s

OK
Destroying test database for alias 'default' ('file:memorydb_default?mode=memory&cache=shared')...
"""


ESCAPING = "test_choices_escaping (forms_tests.widget_tests.test_select.SelectTest)"


def test_django_tests_sharing_a_docstring_are_honest():
    assert _flags(DJANGO_INHERITED_DOCSTRINGS, parse_django) == set()
    failing = DJANGO_INHERITED_DOCSTRINGS.replace(f"{ESCAPING} ... ok", f"{ESCAPING} ... FAIL")
    failing = failing.replace("\nOK\n", "\nFAILED (failures=1)\n")
    assert _flags(failing, parse_django) == set()


# sympy's bin/test -C --verbose: two files with a test of the same name (an issue's regression test
# in both), read as one id from two identical lines; each file's last test shares its line with "[OK]".
SYMPY_SHARED_NAMES = """\
============================= test process starts ==============================
executable:         /opt/miniconda3/envs/testbed/bin/python  (3.9.19-final-0) [CPython]
architecture:       64-bit
cache:              no
ground types:       python
numpy:              None
random seed:        49812367
hash randomization: on (PYTHONHASHSEED=3129475862)

sympy/printing/tests/test_latex.py[3]
test_latex_basic ok
test_issue_15439 ok
test_latex_symbols ok                                                       [OK]

sympy/printing/tests/test_str.py[3]
test_printmethod ok
test_issue_15439 ok
test_Str ok                                                                 [OK]


================== tests finished: 6 passed, in 0.83 seconds ===================
"""


def test_sympy_files_sharing_a_test_name_are_honest():
    assert parse_sympy(SYMPY_SHARED_NAMES) == {t: TestStatus.PASSED for t in ("test_latex_basic", "test_issue_15439",
                                                                              "test_printmethod")}
    assert _flags(SYMPY_SHARED_NAMES, parse_sympy) == set()


# astropy's old command (pytest -rA -vv -o console_output_style=classic): every test twice, once in a
# progress line that ends with its status, once in the summary; ids with spaces kept whole.
ASTROPY_CLASSIC = """\
============================= test session starts ==============================
platform linux -- Python 3.6.15, pytest-3.3.1, py-1.11.0, pluggy-0.6.0 -- /opt/miniconda3/envs/testbed/bin/python
Running tests with Astropy version 3.0.dev20979.
collecting ... collected 3 items

astropy/units/tests/test_format.py::test_cds_grammar[strings 4-unit4] PASSED
astropy/units/tests/test_format.py::test_cds_grammar[strings 5-unit5] PASSED
astropy/units/tests/test_format.py::test_roundtrip[unit0] PASSED

=========================== short test summary info ============================
PASSED astropy/units/tests/test_format.py::test_cds_grammar[strings 4-unit4]
PASSED astropy/units/tests/test_format.py::test_cds_grammar[strings 5-unit5]
PASSED astropy/units/tests/test_format.py::test_roundtrip[unit0]
=========================== 3 passed in 0.12 seconds ===========================
"""

# A current row's eval script runs with `set -x`: its trace surrounds the tests' output.
SEABORN_TRACED = """\
'
+ pytest --no-header -rA tests/_core/test_plot.py
============================= test session starts ==============================
collected 3 items

tests/_core/test_plot.py ...                                             [100%]

=============================== warnings summary ===============================
tests/_core/test_plot.py::TestInit::test_empty
  /testbed/seaborn/_core/plot.py:320: UserWarning: No artists with labels found to put in legend.

-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html
==================================== PASSES ====================================
=========================== short test summary info ============================
PASSED tests/_core/test_plot.py::TestInit::test_empty
PASSED tests/_core/test_plot.py::TestInit::test_data_only
PASSED tests/_core/test_plot.py::TestLayerAddition::test_with_new_data_definition
========================= 3 passed, 1 warning in 1.02s =========================
+ __monkeys_exit=0
+ : '"""


def _without_failures(log: str) -> str:
    return "\n".join(line for line in log.split("\n") if "FAILED" not in line and "ERROR" not in line)


@pytest.mark.parametrize("log, parse", [
    (ASTROPY_CLASSIC, parse_pytest_v2),
    (SEABORN_TRACED, parse_seaborn),
    (_without_failures(excerpts.ASTROPY_LOG).replace("1 failed, 3 passed", "3 passed"), parse_pytest_v2),
    (_without_failures(excerpts.REQUESTS_LOG) + "=================== 6 passed, 1 skipped in 0.24s ===================\n",
     parse_pytest_options),
], ids=["astropy-classic", "seaborn-traced", "astropy-colours", "requests-paths"])
def test_passing_runs_that_exit_zero_are_honest(log, parse):
    assert _flags(log, parse, exit_code=0) == set()


def _synthetic_log(parse, expected: list[str]) -> str:
    """An honest passing log of a Lite row's expected tests in its runner's own format; an id cut at a
    space stands for two tests, as in the rows it came from."""
    if parse is parse_django:
        lines = ["System check identified no issues (0 silenced)."]
        lines += [f"{t} ... ok" for t in expected]
        return "\n".join(lines + ["", "-" * 70, f"Ran {len(expected)} tests in 0.5s", "", "OK", ""])
    if parse is parse_sympy:
        lines = [f"sympy/core/tests/test_a.py[{len(expected) + 1}]", *(f"{t} ok" for t in expected)]
        lines += ["test_last ok" + " " * 40 + "[OK]", "", f"= tests finished: {len(expected) + 1} passed, in 1.20 seconds =", ""]
        return "\n".join(lines)
    # pytest: pseudo-tests such as "[100%]" only ever come from what a test printed, before the summary.
    captured = [f"PASSED  {t}" for t in expected if "::" not in t]
    summary = []
    for test in (t for t in expected if "::" in t):
        cut = test.count("[") > test.count("]")
        summary += [f"PASSED {test} one]", f"PASSED {test} two]"] if cut else [f"PASSED {test}"]
    return "\n".join(["collected %d items" % len(summary), "", "=" * 36 + " PASSES " + "=" * 36, *captured,
                      "=" * 27 + " short test summary info " + "=" * 28, *summary,
                      f"=== {len(summary)} passed in 3.10s ===", ""])


def test_an_honest_run_of_every_lite_row_raises_no_flag(lite):
    unread, flagged = {}, {}
    for task in lite:
        parse = parser_for(task)
        expected = task.fail_to_pass + task.pass_to_pass
        log = _synthetic_log(parse, expected)
        statuses = parse(log)
        unread[task.instance_id] = [t for t in expected if status_of(t, statuses) is not TestStatus.PASSED]
        flags = _flags(log, parse, expected, exit_code=0)
        if flags:
            flagged[task.instance_id] = sorted(f.value for f in flags)
    assert not any(unread.values())  # the sketch is a run that resolves, as grading reads it
    assert flagged == {}


# -- run_flags on forged logs --------------------------------------------------------------------------------

def test_a_pytest_dev_run_with_a_passed_line_after_its_final_line_is_forged():
    log = PYTEST_DEV_INNER_SESSIONS.replace(
        "PASSED testing/test_skipping.py::TestXFail::test_xfail_run_with_skip_mark[test_input1-expected1]",
        "FAILED testing/test_skipping.py::TestXFail::test_xfail_run_with_skip_mark[test_input1-expected1] - assert 0")
    log = log.replace("5 passed", "1 failed, 4 passed")
    log += "PASSED testing/test_skipping.py::TestXFail::test_xfail_run_with_skip_mark[test_input1-expected1]\n"
    assert _flags(log, parse_pytest, PYTEST_DEV_EXPECTED, exit_code=0) == {GuardFlag.FORGED_OUTPUT,
                                                                            GuardFlag.EXIT_CODE_MISMATCH}


def test_a_pytest_dev_run_with_a_summary_line_repeated_verbatim_is_forged():
    line = "PASSED testing/test_skipping.py::test_importorskip\n"
    log = PYTEST_DEV_INNER_SESSIONS.replace(line, line * 2)
    assert _flags(log, parse_pytest, PYTEST_DEV_EXPECTED, exit_code=0) == {GuardFlag.FORGED_OUTPUT}


def test_a_django_result_after_the_final_line_is_forged():
    log = DJANGO_INHERITED_DOCSTRINGS.replace(f"{ESCAPING} ... ok", f"{ESCAPING} ... FAIL") + f"{ESCAPING} ... ok\n"
    expected = list(parse_django(DJANGO_INHERITED_DOCSTRINGS))
    assert GuardFlag.FORGED_OUTPUT in _flags(log, parse_django, expected, exit_code=0)


def test_a_sympy_result_after_the_final_line_is_forged():
    log = SYMPY_SHARED_NAMES + "test_printmethod ok\n"
    assert _flags(log, parse_sympy, ["test_printmethod"]) == {GuardFlag.FORGED_OUTPUT}


@pytest.mark.parametrize("name", ["django", "sympy", "pytest_dev"])
def test_a_marker_line_in_any_format_is_forged(name):
    log = excerpts.EXCERPTS[name] + ">>>>> End Test Output\n"
    assert GuardFlag.FORGED_OUTPUT in _flags(log, EXCERPT_PARSERS[name])


def test_every_lite_log_format_is_covered():
    lite_formats = {get_parser(name) for name in ("parse_log_django", "parse_log_sympy", "parse_log_pytest",
                                                  "parse_log_pytest_options", "parse_log_pytest_v2",
                                                  "parse_log_seaborn", "parse_log_matplotlib")}
    assert lite_formats == set(EXCERPT_PARSERS.values())
