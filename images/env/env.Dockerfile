# The task environment, where the official images keep their conda env: a prefix of its own at
# /opt/miniconda3/envs/testbed, with the recipe's packages.
FROM {base}
COPY activate /opt/miniconda3/bin/activate
COPY env-packages.sh first.txt first-pins.txt requirements.txt pins.txt best-effort.txt as-of ca.pem /tmp/monkeys-env/
# The host's CA bundle (the image's own where the host has none) stays in the image, so every later
# step that reaches PyPI sees it: the packages below, the instance's install step, a recipe's
# Dockerfile lines and the evaluation's reinstall step (they all inherit this ENV).
RUN mkdir -p /opt/miniconda3/ssl \
    && if [ -s /tmp/monkeys-env/ca.pem ]; then cp /tmp/monkeys-env/ca.pem /opt/miniconda3/ssl/ca.pem; \
       else cp /etc/ssl/certs/ca-certificates.crt /opt/miniconda3/ssl/ca.pem; fi
ENV PIP_CERT=/opt/miniconda3/ssl/ca.pem SSL_CERT_FILE=/opt/miniconda3/ssl/ca.pem
# A conda env is a prefix: its own interpreter binary and site-packages, so Python run through any
# path that resolves to its binary keeps the env's packages (tox-current-env, in sphinx's official
# test command, runs the resolved path). A venv with --copies gives both, and its binary, run
# directly, finds its pyvenv.cfg. Run through a symlink made elsewhere, Python finds no pyvenv.cfg
# beside the link and starts as the base's Python, so a .pth in the base's own site-packages adds
# the env's whenever the interpreter's resolved path is the env's binary (a no-op for the base's own
# python3). pip.conf keeps pip on the CA bundle even where the environment is cleared. pip,
# setuptools and wheel are upgraded first: bullseye's pip 20.3 cannot install pyproject projects in
# editable mode (xenial's pip 8 ignores Requires-Python, so 3.5 gets the last releases that support
# it; bionic's pip 9 still defaults to pypi.python.org, gone, so the upgrade names pypi.org).
# Editable installs put the checkout itself on sys.path (setuptools' "compat" mode), as `setup.py
# develop` did: the import hook newer setuptools installs instead hides the package from tools that
# map files to modules by path (pylint 2.15's checkers do not load under it, and its tests fail).
# env-packages.sh installs the recipe's packages, resolved as of its date where it has one. monkeys-
# freeze.txt is what the env then holds; the builder copies it (and the resolution) into labels.
RUN E=/opt/miniconda3/envs/testbed \
    && python3 -m venv --copies "$E" \
    && V=$("$E/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
    && SITE=$(python3 -c 'import site; print(site.getsitepackages()[0])') \
    && mkdir -p "$SITE" \
    && printf '%s\n' "import os, site, sys; _e = '$E'; _p = os.path.join(_e, 'lib', 'python%d.%d' % sys.version_info[:2], 'site-packages'); _p in sys.path or not os.path.realpath(sys.executable).startswith(_e + '/') or site.addsitedir(_p)" \
       > "$SITE/monkeys-testbed-env.pth" \
    && printf '[global]\ncert = /opt/miniconda3/ssl/ca.pem\n' > "$E/pip.conf" \
    && case "$V" in 3.5) TOOLS="pip<21 setuptools<51 wheel<0.38";; *) TOOLS="pip setuptools wheel";; esac \
    && "$E/bin/python" -m pip install -q --no-cache-dir --disable-pip-version-check --index-url https://pypi.org/simple --upgrade $TOOLS \
    && if "$E/bin/python" -m pip install --help | grep -q -- --config-settings; then \
           printf '[install]\nconfig-settings = editable_mode=compat\n' >> "$E/pip.conf"; fi \
    && bash /tmp/monkeys-env/env-packages.sh "$E" /tmp/monkeys-env \
    && "$E/bin/python" -m pip list --format=freeze --disable-pip-version-check > "$E/monkeys-freeze.txt" \
    && rm -rf /tmp/monkeys-env \
    && git config --global user.name monkeys && git config --global user.email monkeys@localhost \
    && git config --global --add safe.directory /testbed \
    && echo 'source /opt/miniconda3/bin/activate && conda activate testbed' >> /root/.bashrc
ENV VIRTUAL_ENV=/opt/miniconda3/envs/testbed PATH=/opt/miniconda3/envs/testbed/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
