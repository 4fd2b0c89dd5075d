import json
from collections import Counter

import pytest

from harness.tasks import TaskLoadError, load_tasks, parse_row

LITE_REPO_COUNTS = {
    "django/django": 114, "sympy/sympy": 77, "matplotlib/matplotlib": 23, "scikit-learn/scikit-learn": 23,
    "pytest-dev/pytest": 17, "sphinx-doc/sphinx": 16, "astropy/astropy": 6, "psf/requests": 6,
    "pylint-dev/pylint": 6, "pydata/xarray": 5, "mwaskom/seaborn": 4, "pallets/flask": 3,
}


def _current_row(**overrides):
    row = {
        "instance_id": "acme__widgets-7", "repo": "acme/widgets", "base_commit": "a" * 40,
        "patch": "diff --git a/x b/x\n", "test_patch": "diff --git a/t b/t\n", "problem_statement": "It breaks.",
        "hints_text": "", "created_at": "2024-01-01T00:00:00Z", "version": "1.0",
        "FAIL_TO_PASS": ["tests/t.py::test_a"], "PASS_TO_PASS": [],
        "environment_setup_commit": "b" * 40, "image": "acme/widgets:7", "eval_script": "#!/bin/bash\n",
        "log_parser": "pytest", "eval_type": "pytest",
    }
    row.update(overrides)
    return row


def test_lite_loads_300_tasks_across_12_repos(lite_rows):
    tasks = load_tasks(lite_rows).tasks
    assert len(tasks) == 300
    assert Counter(t.repo for t in tasks) == LITE_REPO_COUNTS
    # Legacy rows carry their test lists as JSON strings; they arrive as real lists.
    first = tasks[0]
    assert first.instance_id == "astropy__astropy-12907"
    assert first.fail_to_pass and all(isinstance(t, str) and "::" in t for t in first.fail_to_pass)
    assert first.image is None and first.origin.endswith("test.jsonl:1")


def test_truncated_line_is_reported_with_its_number_and_skipped_only_on_request(lite_rows, tmp_path):
    lines = lite_rows.read_text().splitlines(keepends=True)
    lines[6] = lines[6][: len(lines[6]) // 2] + "\n"  # line 7 cut in half, as a broken download leaves it
    broken = tmp_path / "broken.jsonl"
    broken.write_text("".join(lines))
    with pytest.raises(TaskLoadError) as caught:
        load_tasks(broken)
    assert caught.value.line == 7 and str(caught.value).startswith(f"{broken}:7: not valid JSON")
    result = load_tasks(broken, skip_bad=True)
    assert len(result.tasks) == 299 and [s.line for s in result.skipped] == [7]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("FAIL_TO_PASS", "[not json", "field 'FAIL_TO_PASS': not a JSON-encoded list"),
        ("PASS_TO_PASS", [1, 2], "field 'PASS_TO_PASS': expected a list of test ids"),
        ("base_commit", "abc", "field 'base_commit': acme__widgets-7: not a 40-character hex commit"),
        ("instance_id", None, "field 'instance_id': missing"),
        ("problem_statement", 5, "field 'problem_statement': expected a string, got int"),
        ("flaky", {"rate": 2}, "field 'flaky'"),
        ("env_recipe", {"packages": []}, "field 'env_recipe'"),
    ],
)
def test_a_malformed_field_is_named_with_file_and_line(tmp_path, field, value, expected):
    rows = [_current_row(instance_id=f"acme__widgets-{i}") for i in range(3)]
    rows[1] = _current_row(**{field: value})
    if value is None:
        del rows[1][field]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(TaskLoadError) as caught:
        load_tasks(path)
    assert str(caught.value).startswith(f"{path}:2: "), str(caught.value)
    assert expected in str(caught.value)
    assert len(load_tasks(path, skip_bad=True).tasks) == 2


def test_duplicate_instance_ids_name_both_rows(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(_current_row()) + "\n\n" + json.dumps(_current_row()) + "\n")
    with pytest.raises(TaskLoadError, match=rf"{path}:3: field 'instance_id': duplicate of the row at {path}:1"):
        load_tasks(path)


def test_current_rows_keep_image_eval_script_and_log_parser_and_round_trip(tmp_path):
    task = parse_row(_current_row(), "rows.jsonl", 1)
    assert (task.image, task.eval_script, task.log_parser) == ("acme/widgets:7", "#!/bin/bash\n", "pytest")
    assert parse_row(task.to_row(), "again", 1) == task


def test_json_array_files_load_and_name_the_row_number(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([_current_row(), {"instance_id": "x"}]))
    with pytest.raises(TaskLoadError, match=rf"{path}:2: field 'repo': missing"):
        load_tasks(path)


def test_sources_resolve_from_monkeys_data_and_missing_files_are_named(lite_rows, monkeypatch, tmp_path):
    monkeypatch.setenv("MONKEYS_DATA", str(lite_rows.parent.parent))
    assert len(load_tasks("swe-bench-lite").tasks) == 300  # <MONKEYS_DATA>/swe-bench-lite/test.jsonl
    assert len(load_tasks(lite_rows.parent).tasks) == 300  # a folder holding test.jsonl
    with pytest.raises(TaskLoadError, match="no such file"):
        load_tasks(tmp_path / "nope.jsonl")
