"""Conda package specs as pip requirements, for environments the official harness made with conda.

The official build installs a spec's ``packages`` (and a repository's environment.yml) with conda.
monkeys builds with pip, so each conda spec becomes the PyPI requirement that stands for it: the
same name unless PyPI spells it differently, the version constraint in pip's syntax, and nothing
for packages that exist only as conda builds of system libraries or toolchains. Every change is
reported, so a build's report can list how it differs from the spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Conda names whose PyPI distribution has another name.
RENAMED = {
    "matplotlib-base": "matplotlib",
    "pytorch": "torch",
    "pyqt": "PyQt5",
    "msgpack-python": "msgpack",
    "pytables": "tables",
    "dask-core": "dask",
    "iris": "scitools-iris",
    "python-graphviz": "graphviz",
    "pillow-simd": "pillow",
    "typing_extensions": "typing-extensions",
    "importlib_metadata": "importlib-metadata",
}

# Conda packages with no PyPI counterpart: C/C++ libraries, toolchains and programs that conda
# ships as packages (a Debian package or a recipe's Dockerfile lines stand in for them).
NOT_ON_PYPI = frozenset({
    "python", "pip",  # the base gives Python and the env its own current pip
    "hdf5", "libnetcdf", "netcdf-fortran", "libgdal", "gdal", "geos", "proj", "eccodes", "cdms2",
    "cairo", "ffmpeg", "graphviz", "pkg-config", "make", "compilers", "c-compiler", "cxx-compiler",
    "fortran-compiler", "gxx_linux-64", "gcc_linux-64", "gfortran_linux-64", "libblas", "liblapack",
    "mkl", "openblas", "blas", "tk", "qt", "freetype", "libpng", "zlib", "openjpeg", "nodejs",
    "ghostscript", "imagemagick", "texlive-core", "pandoc", "git", "curl", "libiconv", "icu",
})


# Conda packages whose PyPI namesake needs a C library that only the conda package brings with it:
# installed from PyPI they fail at import (xarray's test modules then fail to collect at all).
NEEDS_CONDA_LIBRARY = {"cfgrib": "the ecCodes C library"}


@dataclass(frozen=True)
class Translated:
    """One conda spec as pip sees it."""

    conda: str
    pip: str | None
    """The requirement line, or None where nothing on PyPI stands for the package."""
    note: str = ""
    """How it differs from the conda spec (empty where it is the same requirement)."""


# name, then an optional version part, then an optional build string ("numpy=1.19=py39_0").
_SPEC = re.compile(r"^\s*(?:[\w.-]+::)?(?P<name>[A-Za-z0-9_.-]+)\s*(?P<rest>.*?)\s*$")


def translate(spec: str) -> Translated:
    """A conda match spec (``numpy``, ``numpy=1.19``, ``numpy 1.19``, ``numpy>=1.17,<2``,
    ``conda-forge::numpy==1.19.2=py39_0``) as a pip requirement."""
    match = _SPEC.match(spec)
    if not match or not match["name"]:
        return Translated(spec, None, f"{spec!r}: not a conda package spec, left out")
    name, rest = match["name"], match["rest"]
    if name.lower() in NOT_ON_PYPI:
        return Translated(spec, None, f"{spec}: no PyPI package stands for conda's {name}, left out")
    if name.lower() in NEEDS_CONDA_LIBRARY:
        return Translated(spec, None, f"{spec}: PyPI's {name} needs {NEEDS_CONDA_LIBRARY[name.lower()]}, "
                                      "which only conda's package brings, left out")
    notes = []
    pypi = RENAMED.get(name.lower(), name)
    if pypi != name:
        notes.append(f"conda's {name} is {pypi} on PyPI")
    version, note = _version(rest)
    if note:
        notes.append(note)
    line = f"{pypi}{version}"
    return Translated(spec, line, f"{spec} -> {line}: {'; '.join(notes)}" if notes else "")


def _version(rest: str) -> tuple[str, str]:
    """Conda's version part in pip's syntax, and a note where the meaning had to change."""
    rest = rest.strip()
    if not rest:
        return "", ""
    if "|" in rest:
        return "", f"alternatives {rest!r} have no pip form, left unconstrained"
    # "=1.19" and "1.19" (a bare version) mean 1.19.* in conda; "=1.19=build" adds a build string,
    # which pip has no notion of.
    note = ""
    if rest.startswith("=") and not rest.startswith("=="):
        version, _, build = rest[1:].partition("=")
        if build:
            note = f"conda build {build!r} dropped"
        return f"=={version}" if version.endswith("*") else f"=={version}.*", note
    if re.match(r"^\d", rest):
        version, _, build = rest.partition(" ")
        if build:
            note = f"conda build {build!r} dropped"
        return f"=={version}" if version.endswith("*") else f"=={version}.*", note
    if rest.startswith("=="):
        version, _, build = rest[2:].partition("=")
        return f"=={version}", f"conda build {build!r} dropped" if build else ""
    return rest.replace(" ", ""), ""
