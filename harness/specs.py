"""How the official SWE-bench harness ran a legacy row's tests, as data and pure functions.

Legacy rows (the 12-field SWE-bench / Lite rows of 2024) carry no test command: the official harness
(swebench <= 4.x) derived it from a per-(repo, version) table (test command, environment variables,
install step, Python version) plus the files the row's test patch touches. swebench 5.x dropped that
table because current rows carry a ready ``eval_script``, so the facts live here, in a layout of
our own: per repository, a default and groups of versions that override some of its fields.

Only what an evaluation needs is kept: the test command, the ``export``s and other commands the
official eval script ran first, the install it re-ran, and the Python version. The image-build
steps (conda/pip pins, apt packages, ``pre_install`` edits) are not: the official prebuilt images
already contain their result.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace

from harness.patches import Change, files
from harness.parsers import REPO_PARSERS
from harness.tasks import Task


class UnknownSpec(ValueError):
    """No spec for a (repo, version): the message names both and what is known."""


@dataclass(frozen=True)
class RepoSpec:
    """How one (repo, version)'s tests are run in its environment."""

    test_cmd: str
    """The runner and its flags; the test directives are appended to it."""
    python: str
    """Python version of the environment (informational: the prebuilt images carry it)."""
    install: str | None = None
    """Re-run before the tests (the official eval script does), so a candidate's build changes count."""
    env: tuple[tuple[str, str], ...] = ()
    """Variables set for the evaluation (``export NAME=VALUE`` in the eval script), in order."""
    prepare: tuple[str, ...] = ()
    """Shell commands the eval script runs before installing (e.g. generating a locale)."""


# Test runners. The official table defined a quieter "pytest --no-header ..." first and then redefined
# the name as "pytest -rA", so "pytest -rA" is what every pytest repo except seaborn and old astropy ran.
_PYTEST = "pytest -rA"
_PYTEST_ASTROPY_OLD = "pytest -rA -vv -o console_output_style=classic --tb=no"
_PYTEST_SEABORN = "pytest --no-header -rA"
_DJANGO = "./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1"
_DJANGO_NO_PARALLEL = "./tests/runtests.py --verbosity 2"  # only 1.9: its runner has no --parallel
_SPHINX = "tox --current-env -epy39 -v --"
_SYMPY = "bin/test -C --verbose"

# The official sympy command is "PYTHONWARNINGS='ignore::UserWarning,ignore::SyntaxWarning' bin/test
# ..."; the assignment is kept as an environment variable so every command starts with its runner.
# The tests see the same environment either way.
_SYMPY_ENV = (("PYTHONWARNINGS", "ignore::UserWarning,ignore::SyntaxWarning"),)

# Django's tests compare localised text, so its eval script set a UTF-8 locale first (two orders and
# sets of variables, as in the official table; 3.x also generated the locale, which older images
# had built in).
_DJANGO_LOCALE_OLD = (
    ("LANG", "en_US.UTF-8"), ("LC_ALL", "en_US.UTF-8"), ("PYTHONIOENCODING", "utf8"), ("LANGUAGE", "en_US:en"),
)
_DJANGO_LOCALE_3 = (("LANG", "en_US.UTF-8"), ("LANGUAGE", "en_US:en"), ("LC_ALL", "en_US.UTF-8"))
_LOCALE_GEN = "sed -i '/en_US.UTF-8/s/^# //g' /etc/locale.gen && locale-gen"

_PIP_E = "python -m pip install -e ."


@dataclass(frozen=True)
class _Repo:
    default: RepoSpec
    groups: tuple[tuple[str, Mapping[str, object]], ...]
    """(space-separated versions, fields overriding ``default``); every known version is listed."""


def _versions(prefix: str, first: int, last: int) -> str:
    return " ".join(f"{prefix}{n}" for n in range(first, last + 1))


_REPOS: dict[str, _Repo] = {
    "astropy/astropy": _Repo(
        RepoSpec(_PYTEST, "3.9", "python -m pip install -e .[test] --verbose"),
        (
            ("0.1 0.2 0.3 0.4 1.1 1.2 1.3", {"test_cmd": _PYTEST_ASTROPY_OLD, "python": "3.6"}),
            ("3.0 3.1 3.2 4.1 4.2 4.3 5.0 5.1 5.2", {}),
            ("v5.3", {"python": "3.10"}),  # sic: the dataset spells this version with a "v"
        ),
    ),
    "django/django": _Repo(
        RepoSpec(_DJANGO, "3.5", "python setup.py install"),
        (
            ("1.4 1.5 1.6", {}),
            ("1.7 1.8 1.10 1.11 2.0 2.1 2.2", {"env": _DJANGO_LOCALE_OLD}),
            ("1.9", {"env": _DJANGO_LOCALE_OLD, "test_cmd": _DJANGO_NO_PARALLEL}),
            ("3.0 3.1 3.2", {"python": "3.6", "install": _PIP_E, "env": _DJANGO_LOCALE_3, "prepare": (_LOCALE_GEN,)}),
            ("4.0", {"python": "3.8", "install": _PIP_E}),
            ("4.1 4.2", {"python": "3.9", "install": _PIP_E}),
            ("5.0 5.1 5.2", {"python": "3.11", "install": _PIP_E}),
        ),
    ),
    "matplotlib/matplotlib": _Repo(
        RepoSpec(_PYTEST, "3.11", _PIP_E),
        (
            ("1.0 1.1 1.2 1.3 1.4 1.5 2.0 2.1 2.2", {"python": "3.5", "install": "python setup.py build; python setup.py install"}),
            ("3.0", {"python": "3.7"}),
            ("3.1 3.2 3.3 3.4", {"python": "3.8"}),
            ("3.5 3.6 3.7", {}),
            ("3.8 3.9", {"install": 'python -m pip install --no-build-isolation -e ".[dev]"'}),
        ),
    ),
    "mwaskom/seaborn": _Repo(
        RepoSpec(_PYTEST_SEABORN, "3.9", "python -m pip install -e .[dev]"),
        (("0.11", {"install": _PIP_E}), ("0.12 0.13 0.14", {})),
    ),
    "pallets/flask": _Repo(
        RepoSpec(_PYTEST, "3.11", _PIP_E),
        (("2.0", {"python": "3.9"}), ("2.1", {"python": "3.10"}), ("2.2 2.3 3.0 3.1", {})),
    ),
    "psf/requests": _Repo(
        # Not editable: the official table installs requests as a plain package.
        RepoSpec(_PYTEST, "3.9", "python -m pip install ."),
        ((
            "0.7 0.8 0.9 0.11 0.13 0.14 1.1 1.2 2.0 2.2 2.3 2.4 2.5 2.7 2.8 2.9 2.10 2.11 2.12 2.17 2.18 2.19"
            " 2.22 2.25 2.26 2.27 2.31 3.0",
            {},
        ),),
    ),
    "pydata/xarray": _Repo(
        RepoSpec(_PYTEST, "3.10", _PIP_E),
        (("0.12 0.18 0.19 0.20 2022.03 2022.06 2022.09 2023.07 2024.05", {}),),
    ),
    "pylint-dev/pylint": _Repo(
        RepoSpec(_PYTEST, "3.9", _PIP_E),
        (("2.8 2.9 2.10 2.11 2.13 2.14 2.15 2.16 2.17 3.0 3.1 3.2 3.3 4.0", {}),),
    ),
    "pytest-dev/pytest": _Repo(
        RepoSpec(_PYTEST, "3.9", _PIP_E),
        (("4.4 4.5 4.6 5.0 5.1 5.2 5.3 5.4 6.0 6.2 6.3 7.0 7.1 7.2 7.4 8.0 8.1 8.2 8.3 8.4", {}),),
    ),
    "scikit-learn/scikit-learn": _Repo(
        # --no-build-isolation: the C extensions build against the environment's pinned numpy.
        RepoSpec(_PYTEST, "3.9", "python -m pip install -v --no-use-pep517 --no-build-isolation -e ."),
        (("0.20 0.21 0.22", {"python": "3.6"}), ("1.3 1.4 1.5 1.6", {})),
    ),
    "sphinx-doc/sphinx": _Repo(
        # tox runs pytest in the current environment; the images' tox.ini was edited to "pytest -rA"
        # at build time, which is what makes per-test statuses appear in the log.
        RepoSpec(_SPHINX, "3.9", "python -m pip install -e .[test]"),
        (
            (
                "1.5 1.6 1.7 1.8 2.0 2.1 2.2 2.3 2.4 3.0 3.1 3.2 3.3 3.4 3.5 4.0 4.1 4.2 4.3 4.4 4.5"
                " 5.0 5.1 5.2 5.3 6.0 6.2 7.0 7.1 7.2 7.3 7.4",
                {},
            ),
            ("8.0 8.1", {"python": "3.10"}),
        ),
    ),
    "sympy/sympy": _Repo(
        RepoSpec(_SYMPY, "3.9", _PIP_E, env=_SYMPY_ENV),
        (("0.7 1.0 1.1 1.2 " + _versions("1.", 4, 14), {}),),
    ),
    # The other Python repositories of full SWE-bench (not in Lite), from the same table.
    "marshmallow-code/marshmallow": _Repo(
        RepoSpec(_PYTEST, "3.9", "python -m pip install -e '.[dev]'"),
        (("2.18 2.19 2.20 3.0 3.1 3.2 3.4 3.8 3.9 3.10 3.11 3.12 3.13 3.15 3.16 3.19", {}),),
    ),
    "pvlib/pvlib-python": _Repo(
        RepoSpec(_PYTEST, "3.9", "python -m pip install -e .[all]"),
        ((_versions("0.", 1, 9), {}),),
    ),
    "pydicom/pydicom": _Repo(
        RepoSpec(_PYTEST, "3.6", _PIP_E),
        (
            ("1.0 1.1 1.2 1.3", {}),
            ("1.4 2.0", {"python": "3.8"}),
            ("2.1 2.2", {"python": "3.9"}),
            ("2.3", {"python": "3.10"}),
            ("2.4 3.0", {"python": "3.11"}),
        ),
    ),
    "pylint-dev/astroid": _Repo(
        RepoSpec(_PYTEST, "3.9", _PIP_E),
        (("2.5 2.6 2.7 2.8 2.9 2.10 2.12 2.13 2.14 2.15 2.16 3.0", {}),),
    ),
    "pyvista/pyvista": _Repo(RepoSpec(_PYTEST, "3.9", _PIP_E), ((_versions("0.", 20, 43), {}),)),
    "sqlfluff/sqlfluff": _Repo(
        RepoSpec(_PYTEST, "3.9", _PIP_E),
        (("0.4 0.5 0.6 0.8 0.9 0.10 0.11 0.12 0.13 1.0 1.1 1.2 1.3 1.4 2.0 2.1 2.2", {}),),
    ),
}

def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def known_versions(repo: str) -> list[str]:
    """The versions ``repo`` has a spec for, in version order (empty for an unknown repo)."""
    entry = _REPOS.get(repo)
    if entry is None:
        return []
    return sorted((v for versions, _ in entry.groups for v in versions.split()), key=_version_key)


def known_repos() -> list[str]:
    return sorted(_REPOS)


def spec_for(repo: str, version: str) -> RepoSpec:
    """The spec of ``repo`` at ``version``; UnknownSpec if the table has none."""
    entry = _REPOS.get(repo)
    if entry is None:
        raise UnknownSpec(f"no test spec for repository {repo!r} (version {version!r}); known repositories: {', '.join(known_repos())}")
    for versions, overrides in entry.groups:
        if version in versions.split():
            return replace(entry.default, **overrides)
    raise UnknownSpec(f"no test spec for {repo} version {version!r}; known versions of {repo}: {', '.join(known_versions(repo))}")


# ---------------------------------------------------------------------------------------------
# From a row's test patch to what the eval script runs.

# Files the official rule never passes to the runner. "csv" has no dot in the official list, so any
# path ending in "csv" (e.g. "data_csv") is dropped too; kept as is, since the rule decides which
# tests run and so which statuses the log can contain.
NON_TEST_EXTS = (".json", ".png", "csv", ".txt", ".md", ".jpg", ".jpeg", ".pkl", ".yml", ".yaml", ".toml")

# The official pattern, unanchored as it was (every Lite test patch gives the same paths anchored).
_DIFF_TARGET = re.compile(r"diff --git a/.* b/(.*)")


def test_directives(task: Task) -> list[str]:
    """What the official harness appended to the test command: the test patch's paths without data
    files; for django, module labels (``tests/a/b.py`` -> ``a.b``), which its runtests.py takes."""
    return directives_for(task.repo, _DIFF_TARGET.findall(task.test_patch))


def directives_for(repo: str, paths) -> list[str]:
    """The test command's arguments for these test file paths, as ``test_directives`` makes them."""
    paths = [p for p in paths if not p.endswith(NON_TEST_EXTS)]
    if repo != "django/django":
        return paths
    labels = []
    for path in paths:
        path = path.removesuffix(".py")
        path = path.removeprefix("tests/")
        labels.append(path.replace("/", "."))
    return labels


test_directives.__test__ = False  # type: ignore[attr-defined]  # a function named test_*, not a test


def test_files(task: Task) -> tuple[list[str], list[str]]:
    """(files the test patch changes that exist at base_commit, files it creates).

    Before the test patch goes in, the first are checked out at base_commit and the second removed,
    so a candidate that edits or creates test files cannot change what the test patch applies to.
    (The official script only checked out the first; removing the second makes a candidate that
    creates a test file of the same name apply cleanly instead of failing the test patch.)
    """
    existing, created = [], []
    for diff in files(task.test_patch):
        (created if diff.change is Change.ADDED else existing).append(diff.path)
    return existing, created


test_files.__test__ = False  # type: ignore[attr-defined]


@dataclass(frozen=True)
class LegacyEval:
    """Everything the official eval script of a legacy row did, apart from applying patches."""

    test_command: str
    """The runner with its directives, each shell-quoted where needed."""
    runner: str
    """The runner alone (the table's test command), for other directives."""
    env: tuple[tuple[str, str], ...]
    prepare: tuple[str, ...]
    install: str | None
    existing: tuple[str, ...]
    """Test files to check out at base_commit before applying the test patch."""
    created: tuple[str, ...]
    """Test files the test patch creates, to remove before applying it."""
    log_parser: str
    directives: tuple[str, ...]
    python: str


def legacy_eval(task: Task) -> LegacyEval:
    """The evaluation of a legacy row, as the official harness built it from its table."""
    spec = spec_for(task.repo, task.version)
    directives = test_directives(task)
    existing, created = test_files(task)
    return LegacyEval(
        test_command=" ".join([spec.test_cmd, *(shlex.quote(d) for d in directives)]),
        runner=spec.test_cmd,
        env=spec.env,
        prepare=spec.prepare,
        install=spec.install,
        existing=tuple(existing),
        created=tuple(created),
        log_parser=REPO_PARSERS[task.repo],
        directives=tuple(directives),
        python=spec.python,
    )
