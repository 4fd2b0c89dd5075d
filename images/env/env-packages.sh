#!/bin/bash
# Installs a task environment's packages into the env at $1, from the files the builder put in $2:
#   first.txt         packages installed first, in a pip call of their own (an official spec's
#                     requirements file or conda packages, before its pip_packages)
#   requirements.txt  the recipe's packages (pip requirement lines), all of which must install
#   pins.txt          those of them pinned to one exact version (installed, with their
#                     dependencies, outside the date bound); first-pins.txt: those of first.txt
#   best-effort.txt   lines installed where PyPI has them (an official spec's conda packages);
#                     those it cannot install are listed in $1/monkeys-skipped.txt
#   as-of             a UTC time, or empty: resolve what is left unpinned as PyPI was then
# and writes $1/monkeys-as-of (the bound the instance's install step uses too; empty for none) and
# $1/monkeys-resolution.txt (what the bound was, or why there was none) for the image's labels.
set -eo pipefail
E=$1
IN=$2
pip() { "$E/bin/python" -m pip --disable-pip-version-check --no-cache-dir "$@"; }

AS_OF=$(cat "$IN/as-of")
: > "$E/monkeys-as-of"
: > "$E/monkeys-skipped.txt"
if [ -z "$AS_OF" ]; then
    echo "unbounded: no date given" > "$E/monkeys-resolution.txt"
elif pip install --help | grep -q -- '--uploaded-prior-to'; then
    echo "$AS_OF" > "$E/monkeys-as-of"
    echo "as of $AS_OF" > "$E/monkeys-resolution.txt"
else
    # pip learnt --uploaded-prior-to in 26.0, which needs Python 3.9; older envs resolve against
    # today's PyPI, and say so.
    echo "unbounded: pip $(pip --version | cut -d' ' -f2) on Python $("$E/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])') cannot filter by upload time" \
        > "$E/monkeys-resolution.txt"
fi
WHEELS=/tmp/monkeys-build-wheels
if [ -s "$E/monkeys-as-of" ]; then
    export PIP_UPLOADED_PRIOR_TO="$AS_OF"
    # pip passes the bound on to the isolated environment it builds an sdist in, where no setuptools
    # of 2014 satisfies its own default `setuptools>=40.8.0`: the usual build tools come from today's
    # PyPI into a --find-links folder, which the date filter leaves alone.
    mkdir -p "$WHEELS"
    (unset PIP_UPLOADED_PRIOR_TO; pip download -q -d "$WHEELS" setuptools wheel setuptools_scm) \
        || echo "monkeys: fetching today's build tools failed; sdists build with what the date allows"
    export PIP_FIND_LINKS="$WHEELS"
fi

pins() {
    # A spec's exact pins may postdate the task (SWE-bench pinned many in 2023, tox 4.16 in 2024):
    # under a bound they are installed as given, with what they depend on, outside it (a 2024 tox
    # needs a 2024 cachetools); the bounded step of the same phase then finds them satisfied.
    if [ -s "$E/monkeys-as-of" ] && [ -s "$IN/$1" ]; then
        (unset PIP_UPLOADED_PRIOR_TO; pip install -q -r "$IN/$1") || return 1
    fi
}

# Every step returns its failure explicitly: `set -e` does not apply inside a function whose
# caller tests it.
install_all() {
    : > "$E/monkeys-skipped.txt"
    # Best effort first, as the official build made the conda env before pip installed on top of it.
    if [ -s "$IN/best-effort.txt" ]; then
        pins first-pins.txt || return 1
        pins pins.txt || return 1
        # conda gave binaries: an older wheel beats compiling a newer sdist for minutes.
        if ! pip install -q --prefer-binary -r "$IN/best-effort.txt"; then
            echo "some best-effort packages did not install together; installing them one at a time"
            while IFS= read -r line; do
                [ -n "$line" ] || continue
                pip install -q --prefer-binary "$line" || echo "$line" >> "$E/monkeys-skipped.txt"
            done < "$IN/best-effort.txt"
        fi
    fi
    pins first-pins.txt || return 1
    if [ -s "$IN/first.txt" ]; then
        pip install -q -r "$IN/first.txt" || return 1
    fi
    pins pins.txt || return 1
    if [ -s "$IN/requirements.txt" ]; then
        pip install -q -r "$IN/requirements.txt" || return 1
    fi
}

if [ ! -s "$E/monkeys-as-of" ]; then
    install_all || exit 1
elif ! install_all; then
    # Some requirement has no release of that date that installs here (an sdist that no longer
    # builds, a package whose dependencies need newer releases): the whole env starts over against
    # today's PyPI rather than mixing the two (a 2025 numba fails against a 2021 coverage), and so
    # does the instance's install step; the labels say so.
    echo "monkeys: the packages did not install resolved as of $AS_OF; starting over against today's PyPI"
    unset PIP_UPLOADED_PRIOR_TO PIP_FIND_LINKS
    pip freeze > /tmp/monkeys-installed.txt
    if [ -s /tmp/monkeys-installed.txt ]; then
        pip uninstall -y -q -r /tmp/monkeys-installed.txt
    fi
    : > "$E/monkeys-as-of"
    install_all || exit 1
    echo "unbounded: did not install resolved as of $AS_OF" > "$E/monkeys-resolution.txt"
fi
rm -rf "$WHEELS" /tmp/monkeys-installed.txt
