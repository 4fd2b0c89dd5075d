# A pulled python:<version>-slim base lacks git; add it (and CA certificates) only where missing.
FROM {source}
RUN (command -v git >/dev/null && python3 -m venv --help >/dev/null) \
    || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends git ca-certificates patch \
        && rm -rf /var/lib/apt/lists/*)
CMD ["bash"]
