"""Choosing tasks (harness/subset.py, monkeys/options.py) and finding task sets (hub downloads kept
for offline reuse), on the real Lite rows."""

import json
import sys
import types
from pathlib import Path

import pytest

from harness.subset import Subset, SubsetError, ids_or_files, read_id_list, select
from harness.tasks import TaskLoadError, hub_cache_file, load_tasks, resolve_source

PAPER_FLAKY = Path(__file__).resolve().parents[2] / "shared/data/swe-bench-lite/flaky-instances-monkeys-paper.txt"


@pytest.fixture(scope="module")
def lite(lite_rows):
    return load_tasks(lite_rows).tasks


def ids(tasks):
    return [t.instance_id for t in tasks]


def test_ids_repos_and_regex_narrow_together(lite):
    assert ids(select(lite, Subset(ids=("sympy__sympy-20590", "django__django-11099")))) == [
        "django__django-11099", "sympy__sympy-20590"]  # the set's order, not the command line's
    flask = select(lite, Subset(repos=("pallets/flask",)))
    assert ids(flask) == ["pallets__flask-4045", "pallets__flask-4992", "pallets__flask-5063"]
    assert len(select(lite, Subset(repos=("pallets/flask", "psf/requests")))) == 9
    assert ids(select(lite, Subset(pattern=r"-4\d{3}$", repos=("pydata/xarray",)))) == [
        "pydata__xarray-4094", "pydata__xarray-4248", "pydata__xarray-4493"]
    assert ids(select(lite, Subset(pattern="^django__django-1109"))) == ["django__django-11099"]


def test_the_papers_34_flaky_instances_are_excluded_by_file(lite):
    flaky = read_id_list(PAPER_FLAKY)
    assert len(flaky) == 34 and set(flaky) <= set(ids(lite))
    kept = select(lite, Subset(exclude=flaky))
    assert len(kept) == 266 and not set(ids(kept)) & set(flaky)
    # On the command line a value that is a file is read as a list; anything else is an id.
    values, files = ids_or_files([str(PAPER_FLAKY), "astropy__astropy-12907"])
    assert len(values) == 35 and files == (str(PAPER_FLAKY),)


def test_a_seeded_sample_is_repeatable_and_independent_of_row_order(lite):
    first = ids(select(lite, Subset(sample=10, seed=3)))
    assert len(first) == 10 and first == ids(select(lite, Subset(sample=10, seed=3)))
    assert ids(select(list(reversed(lite)), Subset(sample=10, seed=3))) == list(reversed(first))
    assert first != ids(select(lite, Subset(sample=10, seed=4)))
    # Sampling comes after the other filters.
    django = select(lite, Subset(repos=("django/django",), sample=5, seed=1))
    assert len(django) == 5 and {t.repo for t in django} == {"django/django"}
    assert len(select(lite, Subset(repos=("pallets/flask",), sample=50))) == 3


@pytest.mark.parametrize(("subset", "message"), [
    (Subset(ids=("django__django-1",)), "no such instance in the task set: django__django-1"),
    (Subset(repos=("django",)), "no task in the set is from django (repos here: astropy/astropy"),
    (Subset(pattern="(unclosed"), "--match '(unclosed' is not a regular expression"),
    (Subset(sample=0), "--sample must be at least 1"),
    (Subset(pattern="^nothing-matches$"), "the filters leave no task"),
])
def test_filters_that_cannot_hold_are_errors_that_say_why(lite, subset, message):
    with pytest.raises(SubsetError, match=None) as caught:
        select(lite, subset)
    assert message in str(caught.value)


def test_an_id_list_with_two_ids_on_a_line_names_the_line(tmp_path):
    bad = tmp_path / "ids.txt"
    bad.write_text("# flaky\nastropy__astropy-12907\nsympy__sympy-1 sympy__sympy-2\n")
    with pytest.raises(SubsetError, match=rf"{bad}:3: expected one instance id"):
        read_id_list(bad)


def _fake_hub(monkeypatch, rows, calls):
    module = types.ModuleType("datasets")

    def load_dataset(name, split):
        calls.append((name, split))
        return rows

    module.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", module)


def test_a_hub_download_is_kept_and_later_loads_need_no_hub(lite_rows, tmp_path, monkeypatch):
    # The hub client is the `datasets` package, stood in for here: nothing here reaches the hub.
    monkeypatch.setenv("MONKEYS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MONKEYS_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    rows = [json.loads(line) for line in lite_rows.read_text().splitlines()[:3]]
    calls: list = []
    _fake_hub(monkeypatch, rows, calls)
    assert resolve_source("swe-bench-lite") == "SWE-bench/SWE-bench_Lite"
    first = load_tasks("swe-bench-lite")
    assert calls == [("SWE-bench/SWE-bench_Lite", "test")] and len(first.tasks) == 3
    kept = hub_cache_file("SWE-bench/SWE-bench_Lite")
    assert kept == tmp_path / "cache/tasks/SWE-bench__SWE-bench_Lite/test.jsonl" and kept.is_file()
    # Offline now: the hub client is gone, and the download is used.
    monkeypatch.setitem(sys.modules, "datasets", None)
    again = load_tasks("swe-bench-lite")
    assert calls == [("SWE-bench/SWE-bench_Lite", "test")]
    assert again.source == str(kept) and [t.instance_id for t in again.tasks] == [t.instance_id for t in first.tasks]
    assert again.tasks[0].fail_to_pass == first.tasks[0].fail_to_pass


def test_without_a_download_or_the_hub_extra_the_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("MONKEYS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MONKEYS_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails, as without the extra
    with pytest.raises(TaskLoadError, match=r"swe-bench-verified|SWE-bench_Verified.*hub.*MONKEYS_DATA"):
        load_tasks("swe-bench-verified")


def test_monkeys_data_names_a_local_copy(lite_rows, tmp_path, monkeypatch):
    (tmp_path / "swe-bench-lite").mkdir()
    (tmp_path / "swe-bench-lite/test.jsonl").symlink_to(lite_rows)
    monkeypatch.setenv("MONKEYS_DATA", str(tmp_path))
    assert len(load_tasks("swe-bench-lite").tasks) == 300
