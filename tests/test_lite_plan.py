"""The evaluation commands of SWE-bench rows (harness/evalscript.py): legacy rows through the spec
table, current rows through their own eval_script, on the real Lite rows where there are some."""

from __future__ import annotations

import dataclasses

import pytest

from harness.evalscript import (EVAL_SCRIPT, PlanError, RowKind, eval_files, needs_network, parser_for, plan,
                                read_run, row_kind, with_exit_code)
from harness.parsers import TestStatus
from harness.tasks import load_tasks


@pytest.fixture(scope="module")
def lite(lite_rows):
    return {t.instance_id: t for t in load_tasks(lite_rows).tasks}


def test_a_django_3_row_runs_its_module_labels_with_the_locale_exported(lite):
    task = lite["django__django-11099"]
    assert row_kind(task) is RowKind.LEGACY and not needs_network(task)
    steps = plan(task)
    assert steps.test == ("source /opt/miniconda3/bin/activate && conda activate testbed && cd /testbed && "
                          "export LANG=en_US.UTF-8 && export LANGUAGE=en_US:en && export LC_ALL=en_US.UTF-8 && "
                          "./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1 auth_tests.test_validators")
    lines = steps.setup.splitlines()
    # Preparation and the reinstall may fail without stopping the tests, as in the official script...
    assert any("locale-gen" in line and "||" in line for line in lines)
    assert any("python -m pip install -e ." in line and "||" in line for line in lines)
    # ...but the test files' reset and the test patch must work.
    assert lines[-1] == (f"git checkout -q {task.base_commit} -- tests/auth_tests/test_validators.py && "
                         "git apply /monkeys/test.diff")
    assert parser_for(task)("test_x (auth_tests.test_validators.T) ... ok\n") == {
        "test_x (auth_tests.test_validators.T)": TestStatus.PASSED}


def test_a_sympy_row_runs_bin_test_on_its_files_and_reads_sympys_format(lite):
    task = lite["sympy__sympy-20590"]
    steps = plan(task)
    assert steps.test.endswith("export PYTHONWARNINGS=ignore::UserWarning,ignore::SyntaxWarning && "
                               "bin/test -C --verbose sympy/core/tests/test_basic.py")
    assert parser_for(task)("test_immutable E\ntest_atoms ok\n") == {
        "test_immutable": TestStatus.ERROR, "test_atoms": TestStatus.PASSED}


def test_only_rows_whose_tests_call_real_services_get_the_network(lite):
    online = {t.repo for t in lite.values() if needs_network(t)}
    assert online == {"psf/requests"}


def test_created_test_files_are_removed_before_the_test_patch_not_checked_out(lite):
    task = lite["django__django-12915"]
    last = plan(task).setup.splitlines()[-1]
    assert last == (f"git checkout -q {task.base_commit} -- tests/asgi/tests.py && "
                    "rm -rf -- tests/asgi/project/static/file.txt tests/staticfiles_tests/test_handlers.py && "
                    "git apply /monkeys/test.diff")


def test_a_row_whose_repo_has_no_spec_says_so_naming_the_instance(lite):
    task = dataclasses.replace(lite["pallets__flask-4045"], repo="acme/widgets", instance_id="acme__widgets-1")
    with pytest.raises(PlanError, match=r"acme__widgets-1 \(.*test.jsonl:\d+\): no test command: .*acme/widgets"):
        plan(task)


SCRIPT = """#!/bin/bash
set -uxo pipefail
source /opt/miniconda3/bin/activate
conda activate testbed
cd /testbed
git checkout abc tests/test_x.py
git apply -v - <<'EOF_114329324912'
diff
EOF_114329324912
: '>>>>> Start Test Output'
pytest -rA tests/test_x.py
: '>>>>> End Test Output'
git checkout abc tests/test_x.py
"""


def test_a_current_row_runs_its_own_script_recording_the_tests_exit_status(lite):
    task = dataclasses.replace(lite["pallets__flask-4045"], eval_script=SCRIPT, log_parser="parse_log_pytest",
                               image="swebench/sweb.eval.x86_64.pallets_1776_flask-4045:latest")
    assert row_kind(task) is RowKind.EVAL_SCRIPT and plan(task).test == f"bash /monkeys/{EVAL_SCRIPT} 2>&1"
    script = eval_files(task, None)[EVAL_SCRIPT]
    assert script.splitlines()[-5:-1] == ["pytest -rA tests/test_x.py", "__monkeys_exit=$?",
                                          ": '>>>>> End Test Output'", 'echo ">>>>> Test Exit Code: $__monkeys_exit"']
    assert with_exit_code("echo no markers\n") == "echo no markers\n"
    # What the script prints under `set -x`: the trace around the official markers, then the exit line.
    output = ("+ git apply -v -\nChecking patch tests/test_x.py...\n+ : '>>>>> Start Test Output'\n+ pytest -rA tests/test_x.py\n"
              "PASSED tests/test_x.py::test_a\nFAILED tests/test_x.py::test_b - assert 1\n+ __monkeys_exit=1\n"
              "+ : '>>>>> End Test Output'\n+ echo '>>>>> Test Exit Code: 1'\n>>>>> Test Exit Code: 1\n+ git checkout abc tests/test_x.py\n")
    run = read_run(task, output, 0)  # the script's own status is the final checkout's
    assert run.exit_code == 1
    assert run.statuses == {"tests/test_x.py::test_a": TestStatus.PASSED, "tests/test_x.py::test_b": TestStatus.FAILED}
    assert ">>>>>" not in run.output.replace("+ : '", "")  # only the official slice is kept
