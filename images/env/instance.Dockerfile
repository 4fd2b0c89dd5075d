# One task: the repository at base_commit in /testbed, with history up to base_commit only (the
# bundle holds nothing later, so the fix cannot be found in the object store).
FROM {env}
COPY repo.bundle /tmp/repo.bundle
RUN git init -q /testbed && cd /testbed \
    && git fetch -q /tmp/repo.bundle {ref} && git checkout -q -b main FETCH_HEAD \
    && test "$(git rev-parse HEAD)" = "{commit}" \
    && rm -f .git/FETCH_HEAD /tmp/repo.bundle
WORKDIR /testbed
{install}
