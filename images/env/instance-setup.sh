#!/bin/bash
# Runs in /testbed when an instance image is built, with the files the builder put in $1:
#   setup.sh    the recipe's setup commands (an official spec's pre_install), run as one script
#   install.sh  its install step (e.g. `python -m pip install -e .`)
# What they change in tracked files is committed, as the official images commit theirs: the result
# is the image's starting tree, which an attempt's patch is taken against and never contains.
# The install step resolves the project's dependencies as of the env's date where the env has one
# (monkeys-as-of). Its build requirements are not bounded: pip passes the bound to the isolated
# build environment too, where a 2019 setuptools cannot make an editable install (that needs
# setuptools >= 64, of 2022). They are fetched first against today's PyPI into a local folder given
# as --find-links, which pip's date filter does not apply to. Where the bounded step still fails, it
# runs again against today's PyPI, and monkeys-install-resolution.txt says so.
set -eo pipefail
E=/opt/miniconda3/envs/testbed
IN=$1
WHEELS=/tmp/monkeys-build-wheels
if [ -s "$IN/setup.sh" ]; then
    bash -e "$IN/setup.sh"
fi

build_requirements() {
    # pyproject.toml's [build-system] requires, else pip's default for a project without one.
    "$E/bin/python" - <<'PY'
import os
try:
    import tomllib
except ImportError:
    from pip._vendor import tomli as tomllib
requires = ["setuptools>=40.8.0", "wheel"]
if os.path.exists("pyproject.toml"):
    with open("pyproject.toml", "rb") as f:
        requires = tomllib.load(f).get("build-system", {}).get("requires", requires)
print("\n".join(requires))
PY
}

AS_OF=$(cat "$E/monkeys-as-of" 2>/dev/null || true)
if [ -n "$AS_OF" ] && [ -s "$IN/install.sh" ]; then
    mkdir -p "$WHEELS"
    build_requirements > "$WHEELS/requirements.txt" || true
    "$E/bin/python" -m pip download -q --disable-pip-version-check --no-cache-dir -d "$WHEELS" -r "$WHEELS/requirements.txt" \
        || echo "monkeys: fetching the build requirements failed; the bounded install step fetches them itself"
fi
if [ ! -s "$IN/install.sh" ]; then
    echo "no install step" > "$E/monkeys-install-resolution.txt"
elif [ -z "$AS_OF" ]; then
    bash -e "$IN/install.sh"
    echo "unbounded: the env has no date bound" > "$E/monkeys-install-resolution.txt"
elif PIP_UPLOADED_PRIOR_TO="$AS_OF" PIP_FIND_LINKS="$WHEELS" bash -e "$IN/install.sh"; then
    echo "as of $AS_OF (build requirements: today's)" > "$E/monkeys-install-resolution.txt"
else
    echo "monkeys: the install step failed resolved as of $AS_OF; running it again against today's PyPI"
    bash -e "$IN/install.sh"
    echo "unbounded: failed when resolved as of $AS_OF" > "$E/monkeys-install-resolution.txt"
fi
if ! git diff --quiet HEAD; then
    git commit -q -a -m "monkeys: environment setup"
fi
rm -rf "$WHEELS"
"$E/bin/python" -m pip list --format=freeze --disable-pip-version-check > "$E/monkeys-freeze.txt"
