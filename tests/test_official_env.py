"""Environments derived from the official spec table: the table against the last swebench release
that shipped it (4.1.0, from PyPI), and the derivation's rules on hand-written repository files."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import zipfile

import pytest

from harness import specs
from harness.tasks import EnvRecipe, Task
from images import official_env
from images.build import exact_pin
from images.conda_pypi import translate
from images.official_env import DeriveError, build_for, derive, derive_all
from images.recipes import Recipes, with_recipes

SWEBENCH_WITH_TABLE = "swebench==4.1.0"  # 5.x dropped the per-version table


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """swebench 4.1.0's python constants (the table, requirement and environment paths), read from
    its wheel without importing the package (its __init__ needs the whole harness's dependencies)."""
    where = tmp_path_factory.mktemp("swebench4")
    done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", SWEBENCH_WITH_TABLE, "-d", str(where)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"could not download {SWEBENCH_WITH_TABLE} from PyPI: {done.stderr[-500:]}"
    wheel = next(where.glob("swebench-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        source = zf.read("swebench/harness/constants/python.py")
    path = where / "constants_python.py"
    path.write_bytes(source)
    return runpy.run_path(str(path))


def test_every_version_harness_specs_knows_has_build_facts_equal_to_the_official_table(official):
    table = official["MAP_REPO_VERSION_TO_SPECS_PY"]
    checked = 0
    for repo in specs.known_repos():
        for version in specs.known_versions(repo):
            theirs, ours = table[repo][version], build_for(repo, version)
            assert ours.packages == theirs.get("packages", ""), (repo, version)
            assert list(ours.pip_packages) == theirs.get("pip_packages", []), (repo, version)
            assert list(ours.pre_install) == theirs.get("pre_install", []), (repo, version)
            # The evaluation's half of the table, in harness/specs.py, against the same release.
            spec = specs.spec_for(repo, version)
            assert (spec.python, spec.install) == (theirs["python"], theirs.get("install")), (repo, version)
            checked += 1
    assert checked == sum(len(specs.known_versions(r)) for r in specs.known_repos()) > 250


def test_the_requirement_and_environment_paths_are_the_official_ones(official):
    for repo, paths in official_env.REQUIREMENTS_PATHS.items():
        assert list(paths) == official["MAP_REPO_TO_REQS_PATHS"][repo]
    for repo, paths in official_env.ENVIRONMENT_PATHS.items():
        assert list(paths) == official["MAP_REPO_TO_ENV_YML_PATHS"][repo]
    # Every repo whose table names a file has paths to look for it at.
    for repo in specs.known_repos():
        kinds = {build_for(repo, v).packages for v in specs.known_versions(repo)}
        if "requirements.txt" in kinds:
            assert repo in official_env.REQUIREMENTS_PATHS
        if "environment.yml" in kinds:
            assert repo in official_env.ENVIRONMENT_PATHS


def test_every_lite_row_gets_build_facts(lite_rows):
    rows = [json.loads(line) for line in lite_rows.read_text().splitlines() if line.strip()]
    assert len(rows) == 300
    for row in rows:
        build_for(row["repo"], row["version"])


def _task(repo: str, version: str, instance_id: str = "x__y-1") -> Task:
    return Task(instance_id=instance_id, repo=repo, base_commit="b" * 40, patch="", test_patch="", problem_statement="",
                fail_to_pass=(), pass_to_pass=(), version=version, environment_setup_commit="e" * 40)


def test_a_requirements_file_is_read_as_the_official_build_read_it():
    files = {
        "requirements/dev.txt": "-r docs.txt\n# a comment\n-e .\npytest==7.3.0\nMarkupSafe==2.0.1\ntypes-pkg_resources\n\n",
        "requirements/docs.txt": "sphinx==4.5.0\n.[test]\n",
    }
    derived = derive(_task("pallets/flask", "2.3"), files.get, "2023-04-13T17:03:49Z")
    recipe = derived.recipe
    # -r lines first (as the official build joined them), comments and the repo itself left out, the
    # yanked types-pkg_resources replaced; pip_packages in a pip call of their own, after the file's
    # (their MarkupSafe 2.1.1 then replaces the file's 2.0.1, as in the official env).
    assert recipe.first_packages == ("sphinx==4.5.0", "pytest==7.3.0", "MarkupSafe==2.0.1", "types-setuptools")
    assert recipe.packages == tuple(build_for("pallets/flask", "2.3").pip_packages)
    assert (recipe.python, recipe.install, recipe.as_of) == ("3.11", "python -m pip install -e .", "2023-04-13T17:03:49Z")
    assert derived.deviations == ()


def test_a_missing_requirements_file_names_the_instance_commit_and_paths():
    with pytest.raises(DeriveError, match=r"x__y-1: pallets/flask has no requirements file .* eeee.*requirements/dev.txt"):
        derive(_task("pallets/flask", "2.3"), {}.get)


def test_an_environment_yml_gives_best_effort_conda_packages_and_strict_pip_ones():
    yml = ("name: xarray-tests\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.8\n  - numpy=1.19\n"
           "  - matplotlib-base\n  - hdf5\n  - pip\n  - pip:\n    - numbagg\n")
    derived = derive(_task("pydata/xarray", "0.12"), {"ci/requirements/environment.yml": yml}.get)
    recipe = derived.recipe
    assert recipe.best_effort == ("numpy==1.19.*", "matplotlib")
    assert recipe.first_packages == ("numbagg",) and "dask==2022.8.1" in recipe.packages
    assert recipe.python == "3.10"  # the spec's Python wins over the file's, as the official build's did
    text = "\n".join(derived.deviations)
    for expected in ("python=3.8: no PyPI package", "hdf5: no PyPI package", "matplotlib-base -> matplotlib", "monkeys.skipped"):
        assert expected in text


def test_conda_package_lists_and_pre_install_commands():
    derived = derive(_task("scikit-learn/scikit-learn", "0.20"), {}.get)
    # conda's packages first, then pip_packages' lines (numpy==1.19.2 over conda's numpy), as the official build.
    assert derived.recipe.first_packages == ("numpy", "scipy", "cython", "pytest", "pandas", "matplotlib")
    assert derived.recipe.packages == ("cython", "numpy==1.19.2", "setuptools", "scipy==1.5.2")
    assert derived.recipe.python == "3.6"
    sphinx = derive(_task("sphinx-doc/sphinx", "5.0"), {}.get).recipe
    assert sphinx.setup == ("sed -i 's/pytest/pytest -rA/' tox.ini",)
    assert sphinx.install == "python -m pip install -e .[test]"


@pytest.mark.parametrize("spec, pip, note", [
    ("numpy", "numpy", ""),
    ("numpy=1.19", "numpy==1.19.*", ""),
    ("numpy 1.19", "numpy==1.19.*", ""),
    ("numpy==1.19.2", "numpy==1.19.2", ""),
    ("numpy>=1.17,<2", "numpy>=1.17,<2", ""),
    ("conda-forge::numpy=1.19=py39_0", "numpy==1.19.*", "build"),
    ("pytorch>=1.8", "torch>=1.8", "torch on PyPI"),
    ("hdf5", None, "no PyPI package"),
    ("cfgrib", None, "ecCodes C library"),
    ("numpy 1.19|1.20", "numpy", "alternatives"),
])
def test_conda_specs_in_pip_syntax(spec, pip, note):
    translated = translate(spec)
    assert translated.pip == pip
    assert note in translated.note and bool(translated.note) == bool(note)


@pytest.mark.parametrize("line, pinned", [
    ("attrs==23.1.0", True), ("Jinja2 == 3.0.3", True), ('python-dotenv==1.0.0 ; python_version >= "3.8"', True),
    ("pkg[extra]==1.0", True), ("numpy==1.19.*", False), ("numpy>=1.19", False), ("pytest", False), ("a==1,<2", False),
])
def test_exact_pins_are_those_of_one_version(line, pinned):
    assert exact_pin(line) is pinned


def test_a_recipes_file_overrides_the_derived_environment_value_by_value(tmp_path):
    task = _task("pallets/flask", "2.3", "pallets__flask-1")
    derived = {task.instance_id: official_env.Derived(EnvRecipe(python="3.11", packages=("a==1",), install="pip install -e .",
                                                                 as_of="2023-04-13T17:03:49Z"), ())}
    recipes = Recipes("r.toml", {"pallets/flask": {"as_of": "", "versions": {"2.3": {"packages": ["b"]}}}})
    (out,) = with_recipes([task], recipes, derived)
    assert out.env_recipe == EnvRecipe(python="3.11", packages=("b",), install="pip install -e .", as_of="")
    assert out.image == "swebench/sweb.eval.x86_64.pallets_1776_flask-1:latest"
    # With no file, the derived recipe as it is; a repository neither knows stays without one.
    (plain,) = with_recipes([task], None, derived)
    assert plain.env_recipe == derived[task.instance_id].recipe
    (other,) = with_recipes([_task("someone/else", "1.0")], None, derived)
    assert other.env_recipe is None


def test_derive_all_reads_a_real_mirror_at_environment_setup_commit(tmp_path):
    repo = tmp_path / "flask"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "requirements").mkdir()
    (repo / "requirements" / "dev.txt").write_text("pytest==7.3.0\n")
    env = {"GIT_COMMITTER_DATE": "2023-04-13T17:03:49+00:00", "GIT_AUTHOR_DATE": "2023-04-13T17:03:49+00:00"}
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "setup"], check=True, env={**os.environ, **env})
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    good = Task(instance_id="pallets__flask-1", repo="pallets/flask", base_commit=commit, patch="", test_patch="",
                problem_statement="", fail_to_pass=(), pass_to_pass=(), version="2.3", environment_setup_commit=commit)
    missing = Task(instance_id="pallets__flask-2", repo="pallets/flask", base_commit=commit, patch="", test_patch="",
                   problem_statement="", fail_to_pass=(), pass_to_pass=(), version="2.3", environment_setup_commit="f" * 40)
    derived, errors = derive_all([good, missing], lambda name: repo)
    assert derived["pallets__flask-1"].recipe.as_of == "2023-04-13T17:03:49Z"
    assert derived["pallets__flask-1"].recipe.first_packages == ("pytest==7.3.0",)
    assert errors["pallets__flask-2"].startswith("pallets__flask-2:") and "f" * 40 in errors["pallets__flask-2"]


def test_a_recipes_file_names_the_table_of_a_bad_date_or_setup(tmp_path):
    from images.recipes import RecipeError, read_recipes

    bad_date = tmp_path / "r.toml"
    bad_date.write_text('[repos."pallets/flask".versions."2.3"]\nas_of = "2023-04-13"\n')
    with pytest.raises(RecipeError, match=r"r.toml: repos.'pallets/flask'.versions.'2.3': 'as_of' must be a UTC time"):
        read_recipes(bad_date)
    bad_setup = tmp_path / "s.toml"
    bad_setup.write_text('[repos."pallets/flask"]\nsetup = "sed -i x tox.ini"\n')
    with pytest.raises(RecipeError, match=r"s.toml: repos.'pallets/flask': 'setup' must be a list of shell commands"):
        read_recipes(bad_setup)
    # A repository the table does not know still needs its Python.
    unknown = tmp_path / "u.toml"
    unknown.write_text('[repos."someone/else"]\ninstall = "pip install -e ."\n')
    with pytest.raises(RecipeError, match=r"u.toml: repos.'someone/else': no 'python' for version '1.0'"):
        read_recipes(unknown).recipe_for("someone/else", "1.0")


def test_a_date_before_the_envs_python_had_wheels_moves_to_when_it_had():
    assert official_env.bounded_date("2021-05-04T03:38:52Z", "3.10") == (
        "2022-01-02T00:00:00Z",
        "resolved as of 2022-01-02T00:00:00Z, not the setup commit's 2021-05-04T03:38:52Z: Python 3.10 came out "
        "on 2021-10-04, and PyPI had few wheels for it before then")
    assert official_env.bounded_date("2022-06-01T00:00:00Z", "3.10") == ("2022-06-01T00:00:00Z", "")
    assert official_env.bounded_date("", "3.10") == ("", "")
    yml = "dependencies:\n  - numpy\n"
    derived = derive(_task("pydata/xarray", "0.12"), {"ci/requirements/environment.yml": yml}.get, "2021-05-04T03:38:52Z")
    assert derived.recipe.as_of == "2022-01-02T00:00:00Z"
    assert any("Python 3.10 came out" in d for d in derived.deviations)


def test_a_skipped_best_effort_package_installed_later_is_not_reported_missing():
    from images.build import still_missing

    assert still_missing(["numba", "cartopy>=0.20", "scitools-iris"], "numba==0.68.1\nScitools_Iris==3.0\n") == ["cartopy>=0.20"]
