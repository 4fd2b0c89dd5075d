# A base from a registry (python:<version>-slim) or given with --base-image PYTHON=IMAGE: add what the
# env and instance images need (git, patch, CA certificates, a python3 that can make a venv, a C
# compiler and Python's headers for packages that build extensions), each
# only where missing, from the image's own apt sources.
FROM {source}
RUN missing=""; \
    command -v git >/dev/null || missing="$missing git"; \
    command -v patch >/dev/null || missing="$missing patch"; \
    [ -s /etc/ssl/certs/ca-certificates.crt ] || missing="$missing ca-certificates"; \
    command -v python3 >/dev/null || missing="$missing python3"; \
    command -v gcc >/dev/null && command -v make >/dev/null || missing="$missing build-essential"; \
    python3 -c "import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h'))" 2>/dev/null \
        || missing="$missing python3-dev"; \
    (python3 -m venv /tmp/monkeys-venv-check >/dev/null 2>&1 && rm -rf /tmp/monkeys-venv-check) || missing="$missing python3-venv"; \
    [ -z "$missing" ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
        && rm -rf /var/lib/apt/lists/* /tmp/monkeys-venv-check)
{check}
CMD ["bash"]
