"""The host's CA bundle, carried into containers that reach the network.

On a host behind a TLS-intercepting proxy only the host's bundle trusts the proxy's certificates.
Images monkeys builds keep a copy of it and set PIP_CERT and SSL_CERT_FILE (images/env/env.Dockerfile);
official or pulled images do not, so a step of theirs that reaches PyPI (an evaluation's reinstall,
whose build isolation fetches setuptools) would fail there. Containers opened with the network get
the host's bundle and these variables for their commands, unless the image already names its own.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

# Where a container gets the host's bundle (with the files an evaluation or attempt is given).
CONTAINER_CA_PATH = "/monkeys/ca.pem"
# The variables that point pip, Python's ssl module (and what uses it) and requests at a bundle.
CA_VARIABLES = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


def host_ca_bundle() -> Path | None:
    """The CA bundle the host trusts for PyPI: pip's configured cert, else the usual variables and files."""
    for var in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if os.environ.get(var) and Path(os.environ[var]).is_file():
            return Path(os.environ[var])
    try:
        done = subprocess.run(["python3", "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=30)
        for line in done.stdout.splitlines():
            key, _, value = line.partition("=")
            if key.endswith(".cert") and Path(value.strip("'\"")).is_file():
                return Path(value.strip("'\""))
    except (OSError, subprocess.TimeoutExpired):
        pass
    for candidate in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"):
        if Path(candidate).is_file():
            return Path(candidate)
    try:
        import certifi

        return Path(certifi.where())
    except ImportError:
        return None


def image_env(config_env: list[str] | None) -> dict[str, str]:
    """An image's ENV (its config's ``KEY=value`` list) as a dict."""
    return dict(item.partition("=")[::2] for item in config_env or [])


def ca_environment(image: dict[str, str], path: str = CONTAINER_CA_PATH) -> dict[str, str]:
    """The variables that point a container's commands at the host's bundle at ``path``: none where
    the image sets PIP_CERT itself (monkeys' own images carry the host's bundle already), else each of
    CA_VARIABLES the image leaves unset or empty (a bundle the image names is its own choice)."""
    if image.get("PIP_CERT"):
        return {}
    return {var: path for var in CA_VARIABLES if not image.get(var)}
