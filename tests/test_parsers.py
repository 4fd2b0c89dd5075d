from harness.parsers import TestStatus, get_parser, parse_pytest

LOG = """\
============================= test session starts ==============================
collected 5 items

tests/test_text.py ..F.s                                                  [100%]

=========================== short test summary info ============================
PASSED tests/test_text.py::test_a
PASSED tests/test_text.py::test_b[1-2]
FAILED tests/test_text.py::test_c - AssertionError: assert 'ab' == 'abc'
SKIPPED [1] tests/test_text.py:40: needs network
ERROR tests/test_other.py::test_d - ModuleNotFoundError: No module named 'x'
XFAIL tests/test_text.py::test_e - known bug
==================== 1 failed, 2 passed, 1 skipped in 0.03s ====================
"""


def test_pytest_summary_lines_become_statuses():
    assert parse_pytest(LOG) == {
        "tests/test_text.py::test_a": TestStatus.PASSED,
        "tests/test_text.py::test_b[1-2]": TestStatus.PASSED,
        "tests/test_text.py::test_c": TestStatus.FAILED,
        "tests/test_other.py::test_d": TestStatus.ERROR,
        "tests/test_text.py::test_e": TestStatus.XFAIL,
    }


def test_lines_that_only_look_like_results_are_ignored():
    noisy = "some output PASSED tests/x.py::test_y\n  PASSEDtests/x.py::z\nPASSED\n"
    assert parse_pytest(noisy) == {}


def test_registry_defaults_to_pytest_and_names_unknown_parsers():
    assert get_parser(None) is parse_pytest
    try:
        get_parser("nosuch")
    except KeyError as err:
        assert "nosuch" in str(err) and "pytest" in str(err)
    else:
        raise AssertionError("unknown parser accepted")
