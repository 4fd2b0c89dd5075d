"""Task environments derived from the official SWE-bench spec table, with no recipe file.

The official harness (swebench <= 4.x) built each (repo, version)'s environment from a table: a
``packages`` entry ("requirements.txt" or "environment.yml", read from the repository at the row's
environment_setup_commit, or conda package specs), ``pip_packages`` installed after them, and
``pre_install`` commands run in the checkout before the install step. Those facts are kept here in
a layout of our own (the Python version and install step are in harness/specs.py, which the
evaluation needs too); ``derive`` turns them into the EnvRecipe monkeys builds, with every way the
result departs from the spec listed (conda packages have no pip build, so they become their PyPI
counterparts where one exists).

A recipe file (images/recipes.py) only overrides what is derived here.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import yaml

from harness.specs import UnknownSpec, spec_for
from harness.tasks import UTC_TIME_FORMAT, EnvRecipe, Task
from images.conda_pypi import translate


@dataclass(frozen=True)
class Build:
    """The build facts of one (repo, version) in the official table."""

    packages: str = ""
    """"requirements.txt" or "environment.yml" (a file of the repository, at environment_setup_commit,
    found at REQUIREMENTS_PATHS or ENVIRONMENT_PATHS), else conda package specs, space-separated."""
    pip_packages: tuple[str, ...] = ()
    """Installed with pip after the packages."""
    pre_install: tuple[str, ...] = ()
    """Shell commands run in /testbed before the install step; their edits belong to the image."""


# Where the official build looked for a repository's requirements and environment files, in order.
REQUIREMENTS_PATHS = {
    "django/django": ("tests/requirements/py3.txt",),
    "matplotlib/matplotlib": ("requirements/dev/dev-requirements.txt", "requirements/testing/travis_all.txt"),
    "pallets/flask": ("requirements/dev.txt",),
    "pylint-dev/pylint": ("requirements_test.txt",),
    "pyvista/pyvista": ("requirements_test.txt", "requirements.txt"),
    "sqlfluff/sqlfluff": ("requirements_dev.txt",),
    "sympy/sympy": ("requirements-dev.txt", "requirements-test.txt"),
}
ENVIRONMENT_PATHS = {
    "matplotlib/matplotlib": ("environment.yml",),
    "pydata/xarray": ("ci/requirements/environment.yml", "environment.yml"),
}

# Requirement lines the official build rewrote: packages yanked from PyPI, and what replaces them.
REPLACED = {"types-pkg_resources": "types-setuptools"}

# Requirements-file lines the official build left out: the repository itself, installed by the
# install step, and comments.
_SKIPPED_PREFIXES = ("-e .", "#", ".[test")

# (space-separated versions, build facts) per repository; every version harness/specs.py knows.
_BUILDS: dict[str, tuple[tuple[str, Build], ...]] = {
    "astropy/astropy": (
        ("0.1 0.2 0.3 0.4 1.1 1.2 1.3", Build(packages='setuptools==38.2.4', pip_packages=('attrs==17.3.0', 'exceptiongroup==0.0.0a0', 'execnet==1.5.0', 'hypothesis==3.44.2', 'cython==0.27.3', 'jinja2==2.10', 'MarkupSafe==1.0', 'numpy==1.16.0', 'packaging==16.8', 'pluggy==0.6.0', 'psutil==5.4.2', 'pyerfa==1.7.0', 'pytest-arraydiff==0.1', 'pytest-astropy-header==0.1', 'pytest-astropy==0.2.1', 'pytest-cov==2.5.1', 'pytest-doctestplus==0.1.2', 'pytest-filter-subpackage==0.1', 'pytest-forked==0.2', 'pytest-mock==1.6.3', 'pytest-openfiles==0.2.0', 'pytest-remotedata==0.2.0', 'pytest-xdist==1.20.1', 'pytest==3.3.1', 'PyYAML==3.12', 'sortedcontainers==1.5.9', 'tomli==0.2.0'))),
        ("3.0 3.1 3.2", Build(pip_packages=('attrs==23.1.0', 'exceptiongroup==1.1.3', 'execnet==2.0.2', 'hypothesis==6.82.6', 'iniconfig==2.0.0', 'numpy==1.25.2', 'packaging==23.1', 'pluggy==1.3.0', 'psutil==5.9.5', 'pyerfa==2.0.0.3', 'pytest-arraydiff==0.5.0', 'pytest-astropy-header==0.2.2', 'pytest-astropy==0.10.0', 'pytest-cov==4.1.0', 'pytest-doctestplus==1.0.0', 'pytest-filter-subpackage==0.1.2', 'pytest-mock==3.11.1', 'pytest-openfiles==0.5.0', 'pytest-remotedata==0.4.0', 'pytest-xdist==3.3.1', 'pytest==7.4.0', 'PyYAML==6.0.1', 'setuptools==68.0.0', 'sortedcontainers==2.4.0', 'tomli==2.0.1'))),
        ("4.1 4.2 4.3 5.0 5.1 5.2 v5.3", Build(pip_packages=('attrs==23.1.0', 'exceptiongroup==1.1.3', 'execnet==2.0.2', 'hypothesis==6.82.6', 'iniconfig==2.0.0', 'numpy==1.25.2', 'packaging==23.1', 'pluggy==1.3.0', 'psutil==5.9.5', 'pyerfa==2.0.0.3', 'pytest-arraydiff==0.5.0', 'pytest-astropy-header==0.2.2', 'pytest-astropy==0.10.0', 'pytest-cov==4.1.0', 'pytest-doctestplus==1.0.0', 'pytest-filter-subpackage==0.1.2', 'pytest-mock==3.11.1', 'pytest-openfiles==0.5.0', 'pytest-remotedata==0.4.0', 'pytest-xdist==3.3.1', 'pytest==7.4.0', 'PyYAML==6.0.1', 'setuptools==68.0.0', 'sortedcontainers==2.4.0', 'tomli==2.0.1'), pre_install=('sed -i \'s/requires = \\["setuptools",/requires = \\["setuptools==68.0.0",/\' pyproject.toml',))),
    ),
    "django/django": (
        ("1.4 1.5 1.6", Build()),
        ("1.7 1.8 1.9 1.10 1.11 2.0 2.1 2.2", Build(packages='requirements.txt', pip_packages=('setuptools',), pre_install=('apt-get update && apt-get install -y locales', "echo 'en_US UTF-8' > /etc/locale.gen", 'locale-gen en_US.UTF-8'))),
        ("3.0 3.1 3.2 4.0 4.1 4.2 5.0 5.1 5.2", Build(packages='requirements.txt')),
    ),
    "marshmallow-code/marshmallow": (
        ("2.18 2.19 2.20 3.0 3.1 3.2 3.4 3.8 3.9 3.10 3.11 3.12 3.13 3.15 3.16 3.19", Build()),
    ),
    "matplotlib/matplotlib": (
        ("1.0 1.1 1.2 1.3 1.4 1.5 2.0 2.1 2.2", Build(pip_packages=('pytest',), pre_install=('apt-get -y update && apt-get -y upgrade && && apt-get install -y imagemagick ffmpeg',))),
        ("3.0", Build(packages='requirements.txt', pip_packages=('pytest',), pre_install=('apt-get -y update && apt-get -y upgrade && apt-get install -y imagemagick ffmpeg libfreetype6-dev pkg-config', 'QHULL_URL="http://www.qhull.org/download/qhull-2020-src-8.0.2.tgz"', 'QHULL_TAR="/tmp/qhull-2020-src-8.0.2.tgz"', 'QHULL_BUILD_DIR="/testbed/build"', 'wget -O "$QHULL_TAR" "$QHULL_URL"', 'mkdir -p "$QHULL_BUILD_DIR"', 'tar -xvzf "$QHULL_TAR" -C "$QHULL_BUILD_DIR"'))),
        ("3.1 3.2 3.3 3.4", Build(packages='requirements.txt', pip_packages=('pytest', 'ipython'), pre_install=('apt-get -y update && apt-get -y upgrade && DEBIAN_FRONTEND=noninteractive apt-get install -y imagemagick ffmpeg libfreetype6-dev pkg-config texlive texlive-latex-extra texlive-fonts-recommended texlive-xetex texlive-luatex cm-super', 'QHULL_URL="http://www.qhull.org/download/qhull-2020-src-8.0.2.tgz"', 'QHULL_TAR="/tmp/qhull-2020-src-8.0.2.tgz"', 'QHULL_BUILD_DIR="/testbed/build"', 'wget -O "$QHULL_TAR" "$QHULL_URL"', 'mkdir -p "$QHULL_BUILD_DIR"', 'tar -xvzf "$QHULL_TAR" -C "$QHULL_BUILD_DIR"'))),
        ("3.5 3.6 3.7 3.8 3.9", Build(packages='environment.yml', pip_packages=('contourpy==1.1.0', 'cycler==0.11.0', 'fonttools==4.42.1', 'ghostscript', 'kiwisolver==1.4.5', 'numpy==1.25.2', 'packaging==23.1', 'pillow==10.0.0', 'pikepdf', 'pyparsing==3.0.9', 'python-dateutil==2.8.2', 'six==1.16.0', 'setuptools==68.1.2', 'setuptools-scm==7.1.0', 'typing-extensions==4.7.1'), pre_install=('apt-get -y update && apt-get -y upgrade && DEBIAN_FRONTEND=noninteractive apt-get install -y imagemagick ffmpeg texlive texlive-latex-extra texlive-fonts-recommended texlive-xetex texlive-luatex cm-super dvipng', 'QHULL_URL="http://www.qhull.org/download/qhull-2020-src-8.0.2.tgz"', 'QHULL_TAR="/tmp/qhull-2020-src-8.0.2.tgz"', 'QHULL_BUILD_DIR="/testbed/build"', 'wget -O "$QHULL_TAR" "$QHULL_URL"', 'mkdir -p "$QHULL_BUILD_DIR"', 'tar -xvzf "$QHULL_TAR" -C "$QHULL_BUILD_DIR"'))),
    ),
    "mwaskom/seaborn": (
        ("0.11", Build(pip_packages=('contourpy==1.1.0', 'cycler==0.11.0', 'fonttools==4.42.1', 'importlib-resources==6.0.1', 'kiwisolver==1.4.5', 'matplotlib==3.7.2', 'numpy==1.25.2', 'packaging==23.1', 'pandas==1.3.5', 'pillow==10.0.0', 'pyparsing==3.0.9', 'pytest', 'python-dateutil==2.8.2', 'pytz==2023.3.post1', 'scipy==1.11.2', 'six==1.16.0', 'tzdata==2023.1', 'zipp==3.16.2'))),
        ("0.12 0.13 0.14", Build(pip_packages=('contourpy==1.1.0', 'cycler==0.11.0', 'fonttools==4.42.1', 'importlib-resources==6.0.1', 'kiwisolver==1.4.5', 'matplotlib==3.7.2', 'numpy==1.25.2', 'packaging==23.1', 'pandas==2.0.0', 'pillow==10.0.0', 'pyparsing==3.0.9', 'pytest', 'python-dateutil==2.8.2', 'pytz==2023.3.post1', 'scipy==1.11.2', 'six==1.16.0', 'tzdata==2023.1', 'zipp==3.16.2'))),
    ),
    "pallets/flask": (
        ("2.0", Build(packages='requirements.txt', pip_packages=('setuptools==70.0.0', 'Werkzeug==2.3.7', 'Jinja2==3.0.1', 'itsdangerous==2.1.2', 'click==8.0.1', 'MarkupSafe==2.1.3'))),
        ("2.1 2.2 2.3 3.0 3.1", Build(packages='requirements.txt', pip_packages=('setuptools==70.0.0', 'click==8.1.3', 'itsdangerous==2.1.2', 'Jinja2==3.1.2', 'MarkupSafe==2.1.1', 'Werkzeug==2.3.7'))),
    ),
    "psf/requests": (
        ("0.7 0.8 0.9 0.11 0.13 0.14 1.1 1.2 2.0 2.2 2.3 2.4 2.5 2.7 2.8 2.9 2.10 2.11 2.12 2.17 2.18 2.19 2.22 2.25 2.26 2.27 2.31 3.0", Build(packages='pytest')),
    ),
    "pvlib/pvlib-python": (
        ("0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9", Build(packages='pandas scipy', pip_packages=('jupyter', 'ipython', 'matplotlib', 'pytest', 'flake8'))),
    ),
    "pydata/xarray": (
        ("0.12 0.18 0.19 0.20 2022.03 2022.06 2022.09 2023.07 2024.05", Build(packages='environment.yml', pip_packages=('numpy==1.23.0', 'packaging==23.1', 'pandas==1.5.3', 'pytest==7.4.0', 'python-dateutil==2.8.2', 'pytz==2023.3', 'six==1.16.0', 'scipy==1.11.1', 'setuptools==68.0.0', 'dask==2022.8.1'))),
    ),
    "pydicom/pydicom": (
        ("1.0 1.1 1.2 1.3 1.4 2.0 2.1 2.2 2.3 2.4 3.0", Build(packages='numpy', pip_packages=('pytest',))),
    ),
    "pylint-dev/astroid": (
        ("2.5 2.6 2.7 2.8 2.9 2.10 2.12 2.13 2.14 2.15 2.16 3.0", Build(pip_packages=('pytest',))),
    ),
    "pylint-dev/pylint": (
        ("2.8", Build(packages='requirements.txt', pip_packages=('pyenchant==3.2',), pre_install=('apt-get update && apt-get install -y libenchant-2-dev hunspell-en-us',))),
        ("2.9 2.10 2.11 2.13 2.14 2.15 2.16 2.17", Build(packages='requirements.txt')),
        ("3.0 3.1 3.2 3.3 4.0", Build(packages='requirements.txt', pip_packages=('astroid==3.0.0a6', 'setuptools'))),
    ),
    "pytest-dev/pytest": (
        ("4.4", Build(pip_packages=('atomicwrites==1.4.1', 'attrs==23.1.0', 'more-itertools==10.1.0', 'pluggy==0.13.1', 'py==1.11.0', 'setuptools==68.0.0', 'six==1.16.0'))),
        ("4.5", Build(pip_packages=('atomicwrites==1.4.1', 'attrs==23.1.0', 'more-itertools==10.1.0', 'pluggy==0.11.0', 'py==1.11.0', 'setuptools==68.0.0', 'six==1.16.0', 'wcwidth==0.2.6'))),
        ("4.6", Build(pip_packages=('atomicwrites==1.4.1', 'attrs==23.1.0', 'more-itertools==10.1.0', 'packaging==23.1', 'pluggy==0.13.1', 'py==1.11.0', 'six==1.16.0', 'wcwidth==0.2.6'))),
        ("5.0 5.1 5.2", Build(pip_packages=('atomicwrites==1.4.1', 'attrs==23.1.0', 'more-itertools==10.1.0', 'packaging==23.1', 'pluggy==0.13.1', 'py==1.11.0', 'wcwidth==0.2.6'))),
        ("5.3", Build(pip_packages=('attrs==23.1.0', 'more-itertools==10.1.0', 'packaging==23.1', 'pluggy==0.13.1', 'py==1.11.0', 'wcwidth==0.2.6'))),
        ("5.4", Build(pip_packages=('py==1.11.0', 'packaging==23.1', 'attrs==23.1.0', 'more-itertools==10.1.0', 'pluggy==0.13.1'))),
        ("6.0", Build(pip_packages=('attrs==23.1.0', 'iniconfig==2.0.0', 'more-itertools==10.1.0', 'packaging==23.1', 'pluggy==0.13.1', 'py==1.11.0', 'toml==0.10.2'))),
        ("6.2", Build(pip_packages=('attrs==23.1.0', 'iniconfig==2.0.0', 'packaging==23.1', 'pluggy==0.13.1', 'py==1.11.0', 'toml==0.10.2'))),
        ("6.3", Build(pip_packages=('attrs==23.1.0', 'iniconfig==2.0.0', 'packaging==23.1', 'pluggy==0.13.1', 'py==1.11.0', 'toml==0.10.2'), pre_install=("sed -i 's/>=>=/>=/' setup.cfg",))),
        ("7.0", Build(pip_packages=('attrs==23.1.0', 'iniconfig==2.0.0', 'packaging==23.1', 'pluggy==0.13.1', 'py==1.11.0'))),
        ("7.1 7.2", Build(pip_packages=('attrs==23.1.0', 'iniconfig==2.0.0', 'packaging==23.1', 'pluggy==0.13.1', 'py==1.11.0', 'tomli==2.0.1'))),
        ("7.4 8.0 8.1 8.2 8.3 8.4", Build(pip_packages=('iniconfig==2.0.0', 'packaging==23.1', 'pluggy==1.3.0', 'exceptiongroup==1.1.3', 'tomli==2.0.1'))),
    ),
    "pyvista/pyvista": (
        ("0.20 0.21 0.22 0.23", Build(pip_packages=('pytest',))),
        ("0.24 0.25 0.26 0.27 0.28 0.29 0.30 0.31 0.32 0.33 0.34 0.35 0.36 0.37 0.38 0.39 0.40 0.41 0.42 0.43", Build(packages='requirements.txt', pip_packages=('pytest',), pre_install=('apt-get update && apt-get install -y ffmpeg libsm6 libxext6 libxrender1',))),
    ),
    "scikit-learn/scikit-learn": (
        ("0.20 0.21 0.22", Build(packages='numpy scipy cython pytest pandas matplotlib', pip_packages=('cython', 'numpy==1.19.2', 'setuptools', 'scipy==1.5.2'))),
        ("1.3 1.4 1.5 1.6", Build(packages="'numpy==1.19.2' 'scipy==1.5.2' 'cython==3.0.10' pytest 'pandas<2.0.0' 'matplotlib<3.9.0' setuptools pytest joblib threadpoolctl", pip_packages=('cython', 'setuptools', 'numpy', 'scipy'))),
    ),
    "sphinx-doc/sphinx": (
        ("1.5 1.6 1.7 1.8 2.0 2.1 2.2 2.3 2.4 4.5 5.0 5.1 5.2 5.3 6.0 6.2 7.0 7.1", Build(pip_packages=('tox==4.16.0', 'tox-current-env==0.0.11', 'Jinja2==3.0.3'), pre_install=("sed -i 's/pytest/pytest -rA/' tox.ini",))),
        ("3.0 3.1 3.2 3.3 3.4 3.5 4.0", Build(pip_packages=('tox==4.16.0', 'tox-current-env==0.0.11', 'Jinja2==3.0.3'), pre_install=("sed -i 's/pytest/pytest -rA/' tox.ini", "sed -i 's/Jinja2>=2.3/Jinja2<3.0/' setup.py", "sed -i 's/sphinxcontrib-applehelp/sphinxcontrib-applehelp<=1.0.7/' setup.py", "sed -i 's/sphinxcontrib-devhelp/sphinxcontrib-devhelp<=1.0.5/' setup.py", "sed -i 's/sphinxcontrib-qthelp/sphinxcontrib-qthelp<=1.0.6/' setup.py", "sed -i 's/alabaster>=0.7,<0.8/alabaster>=0.7,<0.7.12/' setup.py", 'sed -i "s/\'packaging\',/\'packaging\', \'markupsafe<=2.0.1\',/" setup.py', "sed -i 's/sphinxcontrib-htmlhelp/sphinxcontrib-htmlhelp<=2.0.4/' setup.py", "sed -i 's/sphinxcontrib-serializinghtml/sphinxcontrib-serializinghtml<=1.1.9/' setup.py"))),
        ("4.1", Build(pip_packages=('tox==4.16.0', 'tox-current-env==0.0.11', 'Jinja2==3.0.3'), pre_install=("sed -i 's/pytest/pytest -rA/' tox.ini", "sed -i 's/Jinja2>=2.3/Jinja2<3.0/' setup.py", "sed -i 's/sphinxcontrib-applehelp/sphinxcontrib-applehelp<=1.0.7/' setup.py", "sed -i 's/sphinxcontrib-devhelp/sphinxcontrib-devhelp<=1.0.5/' setup.py", "sed -i 's/sphinxcontrib-qthelp/sphinxcontrib-qthelp<=1.0.6/' setup.py", "sed -i 's/alabaster>=0.7,<0.8/alabaster>=0.7,<0.7.12/' setup.py", 'sed -i "s/\'packaging\',/\'packaging\', \'markupsafe<=2.0.1\',/" setup.py', "grep -q 'sphinxcontrib-htmlhelp>=2.0.0' setup.py && sed -i 's/sphinxcontrib-htmlhelp>=2.0.0/sphinxcontrib-htmlhelp>=2.0.0,<=2.0.4/' setup.py || sed -i 's/sphinxcontrib-htmlhelp/sphinxcontrib-htmlhelp<=2.0.4/' setup.py", "grep -q 'sphinxcontrib-serializinghtml>=1.1.5' setup.py && sed -i 's/sphinxcontrib-serializinghtml>=1.1.5/sphinxcontrib-serializinghtml>=1.1.5,<=1.1.9/' setup.py || sed -i 's/sphinxcontrib-serializinghtml/sphinxcontrib-serializinghtml<=1.1.9/' setup.py"))),
        ("4.2 4.3 4.4", Build(pip_packages=('tox==4.16.0', 'tox-current-env==0.0.11', 'Jinja2==3.0.3'), pre_install=("sed -i 's/pytest/pytest -rA/' tox.ini", "sed -i 's/Jinja2>=2.3/Jinja2<3.0/' setup.py", "sed -i 's/sphinxcontrib-applehelp/sphinxcontrib-applehelp<=1.0.7/' setup.py", "sed -i 's/sphinxcontrib-devhelp/sphinxcontrib-devhelp<=1.0.5/' setup.py", "sed -i 's/sphinxcontrib-qthelp/sphinxcontrib-qthelp<=1.0.6/' setup.py", "sed -i 's/alabaster>=0.7,<0.8/alabaster>=0.7,<0.7.12/' setup.py", 'sed -i "s/\'packaging\',/\'packaging\', \'markupsafe<=2.0.1\',/" setup.py', "sed -i 's/sphinxcontrib-htmlhelp>=2.0.0/sphinxcontrib-htmlhelp>=2.0.0,<=2.0.4/' setup.py", "sed -i 's/sphinxcontrib-serializinghtml>=1.1.5/sphinxcontrib-serializinghtml>=1.1.5,<=1.1.9/' setup.py"))),
        ("7.2 7.3 7.4 8.0 8.1", Build(pip_packages=('tox==4.16.0', 'tox-current-env==0.0.11', 'Jinja2==3.0.3'), pre_install=("sed -i 's/pytest/pytest -rA/' tox.ini", 'apt-get update && apt-get install -y graphviz'))),
    ),
    "sqlfluff/sqlfluff": (
        ("0.4 0.5 0.6 0.8 0.9 0.10 0.11 0.12 0.13 1.0 1.1 1.2 1.3 1.4 2.0 2.1 2.2", Build(packages='requirements.txt')),
    ),
    "sympy/sympy": (
        ("0.7 1.0 1.1 1.2 1.4 1.5 1.6 1.7 1.8 1.9 1.10 1.11 1.12", Build(packages='mpmath flake8', pip_packages=('mpmath==1.3.0', 'flake8-comprehensions'))),
        ("1.13 1.14", Build(packages='requirements.txt', pip_packages=('mpmath==1.3.0',))),
    ),
}


# When each Python's first final release came out. A date bound earlier than a few months after it
# finds almost no wheels for that Python (xarray 0.12's env is Python 3.10, its setup commit of May
# 2021), so every package would build from source or not at all; the official build, made with
# conda years later, had binaries. The bound is moved to EARLIEST_AFTER_PYTHON after the release.
PYTHON_RELEASED = {
    "3.5": date(2015, 9, 13), "3.6": date(2016, 12, 23), "3.7": date(2018, 6, 27), "3.8": date(2019, 10, 14),
    "3.9": date(2020, 10, 5), "3.10": date(2021, 10, 4), "3.11": date(2022, 10, 24), "3.12": date(2023, 10, 2),
    "3.13": date(2024, 10, 7),
}
EARLIEST_AFTER_PYTHON = timedelta(days=90)


def bounded_date(as_of: str, python: str) -> tuple[str, str]:
    """``as_of``, or the earliest date with wheels for ``python`` if that is later; and a note where moved."""
    released = PYTHON_RELEASED.get(python)
    if not as_of or released is None:
        return as_of, ""
    floor = datetime.combine(released + EARLIEST_AFTER_PYTHON, datetime.min.time(), tzinfo=timezone.utc)
    if datetime.strptime(as_of, UTC_TIME_FORMAT).replace(tzinfo=timezone.utc) >= floor:
        return as_of, ""
    moved = floor.strftime(UTC_TIME_FORMAT)
    return moved, (f"resolved as of {moved}, not the setup commit's {as_of}: Python {python} came out on "
                   f"{released.isoformat()}, and PyPI had few wheels for it before then")


class DeriveError(ValueError):
    """An environment that cannot be derived, naming the instance, the repository and what is missing."""


@dataclass(frozen=True)
class Derived:
    recipe: EnvRecipe
    deviations: tuple[str, ...]
    """Every way the recipe departs from the official spec, in words."""


FileReader = Callable[[str], "str | None"]
"""Reads a file of the repository at environment_setup_commit; None where there is none."""


def build_for(repo: str, version: str) -> Build:
    """The official build facts of ``repo`` at ``version``; UnknownSpec if the table has none."""
    for versions, build in _BUILDS.get(repo, ()):
        if version in versions.split():
            return build
    spec_for(repo, version)  # raises, naming what is known
    raise UnknownSpec(f"no build spec for {repo} version {version!r}")


def derive(task: Task, read: FileReader, as_of: str = "") -> Derived:
    """The environment the official table gives ``task``, as an EnvRecipe resolved as of ``as_of``."""
    try:
        spec, build = spec_for(task.repo, task.version), build_for(task.repo, task.version)
    except UnknownSpec as err:
        raise DeriveError(f"{task.instance_id}: {err}") from None
    strict: list[str] = []
    best_effort: list[str] = []
    deviations: list[str] = []
    if build.packages == "requirements.txt":
        strict += _requirements(task, read)
    elif build.packages == "environment.yml":
        conda, pip = _environment(task, read)
        for line in conda:
            translated = translate(line)
            if translated.note:
                deviations.append(f"environment.yml: {translated.note}")
            if translated.pip:
                best_effort.append(translated.pip)
        strict += pip
    elif build.packages:
        for spec_text in shlex.split(build.packages):
            translated = translate(spec_text)
            if translated.note:
                deviations.append(f"conda packages: {translated.note}")
            if translated.pip:
                strict.append(translated.pip)
    # The official build installed pip_packages in a pip call after the packages, which may change
    # what the first installed (flask's requirements pin MarkupSafe 2.0.1, its pip_packages 2.1.3).
    first, strict = strict, [_replaced(p) for p in build.pip_packages]
    if best_effort:
        deviations.append("environment.yml's conda packages are installed where PyPI has them; "
                          "those it has not are listed in the image's monkeys.skipped label")
    as_of, moved = bounded_date(as_of, spec.python)
    if moved:
        deviations.append(moved)
    recipe = EnvRecipe(python=spec.python, first_packages=tuple(first), packages=tuple(strict), install=spec.install or "",
                       setup=build.pre_install, best_effort=tuple(best_effort), as_of=as_of)
    return Derived(recipe, tuple(deviations))


def _spelled_name(line: str) -> str:
    """A requirement line's project name as the line spells it."""
    return re.split(r"[<>=!~;@\[\s]", line.strip(), maxsplit=1)[0]


def project_name(line: str) -> str:
    """A requirement line's project name, normalised as PyPI compares them."""
    return re.sub(r"[-_.]+", "-", _spelled_name(line)).lower()


def _replaced(line: str) -> str:
    name = _spelled_name(line)
    return REPLACED[name] if name in REPLACED else line


def _first(task: Task, read: FileReader, paths: tuple[str, ...], what: str) -> tuple[str, str]:
    for path in paths:
        text = read(path)
        if text is not None:
            return path, text
    raise DeriveError(f"{task.instance_id}: {task.repo} has no {what} at environment_setup_commit "
                      f"{task.environment_setup_commit} (looked at {', '.join(paths)})")


def _requirements(task: Task, read: FileReader) -> list[str]:
    """The requirements file's lines as the official build read them: ``-r`` files inlined (their
    lines first, as it did), the repository itself and comments left out, yanked names replaced."""
    path, text = _first(task, read, REQUIREMENTS_PATHS.get(task.repo, ()), "requirements file")
    included: list[str] = []
    own: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("-r"):
            nested = posixpath.normpath(posixpath.join(posixpath.dirname(path), stripped[2:].strip()))
            for extra in (read(nested) or "").splitlines():
                if extra.strip() and not extra.strip().startswith(_SKIPPED_PREFIXES):
                    included.append(extra.strip())
        elif stripped and not stripped.startswith(_SKIPPED_PREFIXES):
            own.append(stripped)
    return [_replaced(line) for line in included + own]


def _environment(task: Task, read: FileReader) -> tuple[list[str], list[str]]:
    """(conda specs, pip lines) of the repository's environment.yml."""
    path, text = _first(task, read, ENVIRONMENT_PATHS.get(task.repo, ()), "environment.yml")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise DeriveError(f"{task.instance_id}: {task.repo}'s {path} at {task.environment_setup_commit} "
                          f"is not valid YAML: {err}") from None
    conda: list[str] = []
    pip: list[str] = []
    for entry in data.get("dependencies") or []:
        if isinstance(entry, dict):
            pip += [_replaced(str(p)) for p in entry.get("pip") or []]
        elif entry is not None:
            conda.append(str(entry))
    return conda, pip


# ---------------------------------------------------------------------------------------------
# Reading a repository mirror.


def commit_time(repo: Path, commit: str) -> str:
    """The commit's committer time in UTC, as ``as_of`` takes it (what PyPI held then is what the
    environment resolves to)."""
    done = subprocess.run(["git", "-C", str(repo), "show", "-s", "--format=%ct", commit], capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        raise DeriveError(f"{repo} has no commit {commit}: {done.stderr.strip()[-200:]}")
    return datetime.fromtimestamp(int(done.stdout.strip()), tz=timezone.utc).strftime(UTC_TIME_FORMAT)


def derive_from(task: Task, repo: Path) -> Derived:
    """``derive`` with the repository's files and date at the row's environment_setup_commit (its
    base_commit where the row has none), read from a local mirror."""
    commit = task.environment_setup_commit or task.base_commit
    try:
        as_of = commit_time(repo, commit)
    except DeriveError as err:
        raise DeriveError(f"{task.instance_id}: environment_setup_commit: {err}") from None

    def read(path: str) -> str | None:
        done = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"], capture_output=True, text=True)
        return done.stdout if done.returncode == 0 else None

    return derive(task, read, as_of)


def derive_all(tasks: Iterable[Task], locate: Callable[[str], Path]) -> tuple[dict[str, Derived], dict[str, str]]:
    """(derived environment, error) by instance id, for the tasks that need one: rows of a repository
    the table knows, with neither an image nor a recipe of their own. One derivation per
    (repo, version, environment_setup_commit), as the official build made one env for each."""
    derived: dict[str, Derived] = {}
    errors: dict[str, str] = {}
    done: dict[tuple[str, str, str], Derived | str] = {}
    for task in tasks:
        if task.image or task.env_recipe or task.repo not in _BUILDS:
            continue
        key = (task.repo, task.version, task.environment_setup_commit or task.base_commit)
        if key not in done:
            try:
                done[key] = derive_from(task, locate(task.repo))
            except (DeriveError, FileNotFoundError, ValueError, KeyError) as err:
                done[key] = str(err)
        result = done[key]
        if isinstance(result, Derived):
            derived[task.instance_id] = result
        else:
            errors[task.instance_id] = result if result.startswith(task.instance_id) else f"{task.instance_id}: {result}"
    return derived, errors
