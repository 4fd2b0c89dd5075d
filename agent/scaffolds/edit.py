"""The ``edit`` scaffold: one model call per attempt, for cheap or weak models (as Agentless and
Moatless do). The host ranks the repository's files against the issue (paths, stack-trace frames and
identifiers it names, BM25 over every file's contents), then the blocks of the best files (functions,
classes, constants, import groups, methods), shows the most relevant code that fits the prompt
budget, and applies the edits the model answers with in the container.

Chat models answer with search/replace blocks or a whole rewritten function. Base models, which
follow instructions poorly but complete code, get a completion-style prompt instead: the likeliest
block, "Fixed version:", and (for a function or class) its first line; what they write until the
block ends replaces it.

Files are read and written back as bytes (base64 through the shell), decoded with surrogateescape,
so bytes that are not UTF-8, CRLF line endings, a missing final newline and the file's mode (the
file is rewritten in place, never recreated) all survive an edit.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.attempt import Context, ExitReason
from agent.edits import (EditError, apply_edit, completed_function, completed_statements, parse_search_replace,
                         replace_span, rewritten_function)
from agent.localize import (RankedFile, RankedSpan, Span, Terms, candidate_files, functions, issue_terms,
                            parse_ls_tree, rank_by_content, rank_spans, span_text)
from agent.model import Endpoint
from agent.prompts import Templates
from agent.session import REPO_DIR, ansi_c_quote

# Marks the start of each file in the corpus the container prints (a byte no source line starts with).
_FILE_MARK = "\x01"
# A block's rank among the shown files' blocks also counts its file's rank: this much per place.
_FILE_RANK_BONUS = 3.0
# The line standing for code left out between shown blocks.
ELISION = "...\n"


@dataclass(frozen=True)
class EditPlan:
    """What the scaffold shows the model, decided from the issue and the repository's files alone."""

    terms: Terms
    ranked: list[RankedFile]
    """The files shown, best first."""
    sources: dict[str, str]
    """Their exact contents (surrogateescape for bytes that are not UTF-8), in rank order."""
    shown: dict[str, str] = field(default_factory=dict)
    """What the chat prompt shows of each file: all of it, or its best blocks with ``...`` between."""
    target: RankedSpan | None = None
    """The block a completion rewrites: the best-ranked one that fits the completion budget."""


def plan_edit(problem: str, corpus: dict[str, str], read: Callable[[str], str] | None = None, *, files: int = 3,
              prompt_chars: int = 24_000, completion_chars: int = 6_000) -> EditPlan:
    """Rank ``corpus`` (path -> contents of every candidate file) against the issue and choose what to
    show: the ``files`` best files, read exactly with ``read`` (``corpus.get`` by default); of them,
    whole files when they fit ``prompt_chars`` together, else their best blocks until the budget is
    spent; and the best block of at most ``completion_chars`` for a completion. Pure when ``read`` is."""
    terms = issue_terms(problem)
    ranked = rank_by_content(terms, problem, corpus, limit=files)
    sources = {r.path: (read or corpus.__getitem__)(r.path) for r in ranked}
    bonus = {r.path: _FILE_RANK_BONUS * (len(ranked) - i) for i, r in enumerate(ranked)}
    spans = rank_spans(terms, problem, sources, file_bonus=bonus)
    fitting = [s for s in spans if len(span_text(sources[s.path], s.span)) <= completion_chars]
    target = fitting[0] if fitting else min(spans, key=lambda s: s.span.end - s.span.start, default=None)
    if sum(map(len, sources.values())) <= prompt_chars:
        shown = dict(sources)
    else:
        shown = _best_blocks(sources, spans, prompt_chars)
    return EditPlan(terms=terms, ranked=ranked, sources=sources, shown=shown, target=target)


def _display_start(lines: list[str], span: Span) -> int:
    # Decorators belong with what they decorate when shown (they stay outside the span itself).
    start = span.start
    while start > 0 and lines[start - 1].startswith(span.indent + "@"):
        start -= 1
    return start


def _best_blocks(sources: dict[str, str], spans: list[RankedSpan], budget: int) -> dict[str, str]:
    """Each file's chosen blocks in file order, ``...`` between gaps: blocks taken best first
    while they fit what is left of ``budget`` characters."""
    chosen: dict[str, set[int]] = {}
    left = budget
    split = {path: text.splitlines(keepends=True) for path, text in sources.items()}
    for ranked in spans:
        lines = split[ranked.path]
        rows = set(range(_display_start(lines, ranked.span), ranked.span.end)) - chosen.get(ranked.path, set())
        cost = sum(len(lines[i]) for i in rows)
        if not rows or cost > left:
            continue
        chosen.setdefault(ranked.path, set()).update(rows)
        left -= cost
        if left < 200:
            break
    shown = {}
    for path, lines in split.items():
        rows = chosen.get(path)
        if not rows:
            continue
        parts = []
        for i in range(len(lines)):
            if i in rows:
                parts.append(lines[i])
            elif i - 1 in rows or (i == 0 and rows):
                parts.append(ELISION)
        shown[path] = "".join(parts)
    return shown


def completion_prompt(templates: Templates, problem: str, plan: EditPlan) -> str:
    """The base-model prompt for the plan's target block (``completion.j2``)."""
    assert plan.target is not None, "no block to rewrite"
    path, span = plan.target.path, plan.target.span
    lines = plan.sources[path].splitlines(keepends=True)
    title, summary = _summary(problem)
    first = lines[span.start].rstrip("\r\n") if span.kind.compound else ""
    return templates.render("completion", path=path, title=title, summary=summary,
                            function=span_text(plan.sources[path], span).rstrip("\r\n"), def_line=first)


def chat_prompt(templates: Templates, problem: str, plan: EditPlan) -> str:
    """The chat-model prompt showing the plan's code (``chat.j2``)."""
    shown = [{"path": p, "content": text} for p, text in plan.shown.items()]
    return templates.render("chat", problem_statement=problem, files=shown)


def decode(data: bytes) -> str:
    """File bytes as text that encodes back to the same bytes (surrogateescape)."""
    return data.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    """The inverse of :func:`decode`."""
    return text.encode("utf-8", "surrogateescape")


# The repository's files at HEAD with their modes and sizes (the attempt starts at base_commit).
TREE_COMMAND = "git ls-tree -r -l -z --full-tree HEAD"


def corpus_command(paths: list[str]) -> str:
    """A shell command printing each file of ``paths`` after a ``\\x01path`` line (awk: present in
    every image, one process per few thousand files). Bytes that are not UTF-8 are lost on the way,
    which ranking tolerates; the files shown and edited are read exactly with :func:`read_command`."""
    listing = ansi_c_quote("\n".join(paths))
    return (f"printf '%s\\n' {listing} | xargs -d '\\n' -r "
            f"awk 'FNR==1{{printf \"\\001%s\\n\", FILENAME}} {{print}}'")


def read_command(path: str) -> str:
    """A shell command printing the file's exact bytes as base64 (see :func:`parse_read`)."""
    return f"base64 -w0 -- {ansi_c_quote(path)}"


def parse_read(output: str) -> str:
    """The file text :func:`read_command` printed, decoded as :func:`decode` does."""
    return decode(base64.b64decode("".join(output.split())))


def write_command(path: str, text: str) -> str:
    """A shell command writing ``text`` (encoded as :func:`encode` does) over ``path`` in place:
    ``>`` truncates the existing file, so its mode (an executable bit) stays as it was."""
    data = ansi_c_quote(base64.b64encode(encode(text)).decode())
    return f"printf '%s' {data} | base64 -d > {ansi_c_quote(path)}"


def parse_corpus(output: str) -> dict[str, str]:
    """Path -> contents from the corpus command's output (each file after a ``\\x01path`` line)."""
    corpus: dict[str, str] = {}
    path = None
    parts: list[str] = []
    for line in output.splitlines(keepends=True):
        if line.startswith(_FILE_MARK):
            if path is not None:
                corpus[path] = "".join(parts)
            path, parts = line[1:].rstrip("\r\n"), []
        elif path is not None:
            parts.append(line)
    if path is not None:
        corpus[path] = "".join(parts)
    return corpus


@dataclass
class EditScaffold:
    name: str = "edit"
    endpoint: Endpoint = Endpoint.CHAT
    """``completions`` for base models (the completion-style prompt), ``chat`` otherwise."""
    files: int = 3
    """Files shown to a chat model."""
    prompt_chars: int = 24_000
    """Characters of code a chat prompt shows, all files together."""
    completion_chars: int = 6_000
    """Largest block a completion prompt shows and has rewritten."""

    def run(self, ctx: Context) -> ExitReason:
        tree = parse_ls_tree(self._read(ctx, TREE_COMMAND))
        paths = candidate_files([(p, size) for p, size, _ in tree])
        wanted = set(paths)
        total = sum(size for p, size, _ in tree if p in wanted)
        corpus = parse_corpus(self._read(ctx, corpus_command(paths), limit=total + len(paths) * 256 + 65_536)
                              ) if paths else {}
        plan = plan_edit(ctx.task.problem_statement, corpus, lambda p: self._read_exact(ctx, p), files=self.files,
                         prompt_chars=self.prompt_chars, completion_chars=self.completion_chars)
        ctx.log("system", f"files ranked: {', '.join(f'{r.path} ({r.score:.1f})' for r in plan.ranked) or 'none'}",
                identifiers=list(plan.terms.identifiers[:20]), candidates=len(corpus))
        if not plan.sources:
            ctx.log("system", "the repository has no file to edit")
            return ExitReason.NO_EDIT
        if self.endpoint is Endpoint.COMPLETIONS:
            changed = self._complete(ctx, plan)
        else:
            changed = self._chat(ctx, plan)
        for path, text in changed.items():
            result = ctx.shell(f"cd {REPO_DIR} && {write_command(path, text)}")
            if result.exit_code != 0:
                ctx.log("system", f"writing {path} failed: {result.output}")
        return ExitReason.ANSWERED if changed else ExitReason.NO_EDIT

    @staticmethod
    def _read(ctx: Context, command: str, limit: int = 4_000_000) -> str:
        return ctx.shell(f"cd {REPO_DIR} && {command}", output_limit=limit).output

    def _read_exact(self, ctx: Context, path: str) -> str:
        return parse_read(self._read(ctx, read_command(path), limit=64_000_000))

    def _complete(self, ctx: Context, plan: EditPlan) -> dict[str, str]:
        if plan.target is None:
            ctx.log("system", "the files found have no block of code to rewrite")
            return {}
        path, span = plan.target.path, plan.target.span
        prompt = completion_prompt(ctx.templates, ctx.task.problem_statement, plan)
        ctx.log("user", prompt, block=f"{path}:{span.start + 1}-{span.end} {span.kind.value} {span.name}")
        code = span_text(plan.sources[path], span)
        # Room for a rewrite a little longer than the original (about 3 characters per token).
        budget = min(ctx.model.config.max_tokens, len(code) // 3 + 128)
        stops = body_end_stops(span.indent) if span.kind.compound else ["\n\n\n", "\n```", "\n# "]
        reply = ctx.model.complete(prompt, seed=ctx.seed, max_tokens=budget, stop=stops)
        ctx.log("assistant", reply.text, tokens=reply.usage.total)
        ctx.meter.add(reply)
        try:
            if span.kind.compound:
                # The prompt ends with the block's first line and its newline: the completion starts on the next.
                first = plan.sources[path].splitlines()[span.start]
                new_code = completed_function(first, "\n" + reply.text)
            else:
                new_code = completed_statements(reply.text)
        except EditError as err:
            ctx.log("system", f"no usable code in the completion: {err}")
            return {}
        return _changed(plan.sources, path, replace_span(plan.sources[path], span, new_code))

    def _chat(self, ctx: Context, plan: EditPlan) -> dict[str, str]:
        prompt = chat_prompt(ctx.templates, ctx.task.problem_statement, plan)
        ctx.log("user", prompt)
        reply = ctx.model.chat([{"role": "user", "content": prompt}], seed=ctx.seed)
        ctx.log("assistant", reply.text, tokens=reply.usage.total)
        ctx.meter.add(reply)
        sources = plan.sources
        current = dict(sources)
        for edit in parse_search_replace(reply.text):
            targets = [edit.path] if edit.path in current else list(current)
            for path in targets:
                try:
                    current[path] = apply_edit(current[path], edit.search, edit.replace)
                    break
                except EditError as err:
                    last = err
            else:
                ctx.log("system", f"edit not applied: {last}")
        if current == sources:
            # No search/replace block applied: a whole rewritten function, matched by name.
            for path, text in sources.items():
                for span in functions(text):
                    new_function = rewritten_function(reply.text, span.name)
                    if new_function is not None:
                        current[path] = replace_span(text, span, new_function)
                        return _changed(sources, path, current[path])
        return {p: t for p, t in current.items() if t != sources[p]}


def body_end_stops(indent: str) -> list[str]:
    """Stop sequences that end a completion where the function's body ends: a line starting at the
    def's own indentation with what usually follows a function (base models ramble on otherwise,
    and every token costs seconds on a CPU). The completion is still cut at the dedent afterwards."""
    return ["\n\n\n", "\n```"] + [f"\n{indent}{c}" for c in "#@dcif_'\"r"]


def _changed(sources: dict[str, str], path: str, text: str) -> dict[str, str]:
    return {path: text} if text != sources[path] else {}


def _summary(problem: str, lines: int = 12, width: int = 100) -> tuple[str, list[str]]:
    """The issue's first line as a title and its next lines, trimmed, for a code comment."""
    rows = [r.strip()[:width] for r in problem.strip().splitlines() if r.strip()]
    return (rows[0] if rows else ""), rows[1:1 + lines]
