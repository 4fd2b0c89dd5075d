# One task: the repository at base_commit in /testbed, as the official images have it: the history
# up to base_commit and the tags on it or its ancestors (setuptools_scm reads versions from them),
# nothing later (the bundle holds no later commit, tag or branch, so the fix cannot be found in the
# object store). The bundle's own ref is dropped once base_commit is checked out as main.
FROM {env}
COPY repo.bundle /tmp/repo.bundle
RUN git init -q /testbed && cd /testbed \
    && git fetch -q --no-tags /tmp/repo.bundle "+{ref}:{ref}" "+refs/tags/*:refs/tags/*" \
    && git checkout -q -b main {commit} \
    && git update-ref -d {ref} \
    && test "$(git rev-parse HEAD)" = "{commit}" \
    && rm -f .git/FETCH_HEAD /tmp/repo.bundle
WORKDIR /testbed
{setup}
