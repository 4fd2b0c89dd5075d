"""Finds the code an issue is about, host-side and without a model: the terms an issue mentions, the
files most likely involved, and the blocks of code to show.

Everything here works on plain strings (the issue, ``git ls-files``/``git ls-tree`` and ``git grep``
output, file contents), so it never touches a container. Files are ranked by what the issue names
(paths, stack-trace frames, identifiers defined or used) plus a BM25 ranking of their contents
against the issue (``bm25s``), so there is a ranked candidate whenever the repository has a Python
file. Blocks are top-level statements (a function, a class, a constant assignment, an import group)
and methods. Extraction goes by indentation, not ``ast``: the code under repair may be Python 2 or
otherwise fail to parse with the host's Python.
"""

from __future__ import annotations

import builtins
import enum
import keyword
import math
import re
from dataclasses import dataclass

import numpy as np

# Identifiers shorter than this are mostly loop variables and noise (``i``, ``df``, ``x``).
MIN_IDENTIFIER_LEN = 3

# A path mentioned in the issue beats anything grep finds: the reporter looked at that file.
PATH_SCORE = 100.0
# Per distinct identifier a file defines, and per distinct identifier it only uses.
DEFINE_SCORE = 10.0
MENTION_SCORE = 1.0

_PY2_KEYWORDS = {"print", "exec"}
# Words that look like identifiers in issues but point at no particular code: placeholder names,
# traceback furniture, English that slips through the camel/snake/call rules.
_COMMON_WORDS = {
    "the", "and", "for", "not", "but", "this", "that", "with", "from", "into", "self", "cls", "args",
    "kwargs", "foo", "bar", "baz", "qux", "quux", "spam", "eggs", "ham", "example", "examples", "test",
    "tests", "testing", "python", "python2", "python3", "pip", "install", "traceback", "most", "recent",
    "call", "last", "file", "line", "error", "warning", "expected", "actual", "output", "result",
    "issue", "bug", "version", "true", "false", "none", "null", "should", "would", "could", "when",
    "then", "also", "what", "which", "here", "there", "some", "etc", "http", "https", "www", "com",
    "org", "github", "githubusercontent", "stackoverflow", "pypi", "readme", "todo", "fixme", "note",
    "main", "obj", "__name__", "__main__", "__file__", "__doc__", "javascript", "macos", "iphone", "ipython",
}
# Compared lowercased: ``True``, ``Traceback`` and ``File`` are as empty as ``true`` and ``file``.
_STOP_WORDS = ({w.lower() for w in keyword.kwlist} | {w.lower() for w in keyword.softkwlist}
               | _PY2_KEYWORDS | _COMMON_WORDS)
# Compared as written: ``format`` is a builtin, but a ``Format`` class is the repository's own.
_BUILTINS = set(dir(builtins))
# Extensions whose dotted names (``README.md``, ``setup.cfg``) are files, not ``obj.attr``.
_FILE_EXTENSIONS = {"py", "pyc", "pyi", "pyx", "md", "rst", "txt", "cfg", "toml", "ini", "json", "yaml",
                    "yml", "html", "csv", "log", "sh", "in", "lock", "c", "h", "js", "css", "xml"}
_TEST_DIRS = {"test", "tests", "testing"}

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_URL_RE = re.compile(r"https?://\S+")
_FENCE_RE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", re.S | re.M)
_INLINE_CODE_RE = re.compile(r"`([^`\n]+)`")
_PATH_RE = re.compile(r"(?<![\w./\\-])((?:[\w.\\-]*[/\\])*[\w-]+\.py)(?!\w)")
_DOTTED_RE = re.compile(rf"(?<![\w.]){_NAME}(?:\.{_NAME})+(?!\w)")
_CALL_RE = re.compile(rf"(?<![\w.])({_NAME})\(")
_ATTR_RE = re.compile(rf"(?<=\.)({_NAME})")
_CAMEL_RE = re.compile(r"(?<![\w])([A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*|[A-Z]{2,}[a-z]{2,}[A-Za-z0-9]*"
                       r"|[a-z][a-z0-9]*[A-Z][A-Za-z0-9]*)(?!\w)")
_WORD_RE = re.compile(rf"(?<![\w])({_NAME})(?!\w)")
# String literals and comments in code snippets hold prose and sample data, not names to look for.
_CODE_STRING_RE = re.compile(r"'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"", re.S)
_CODE_COMMENT_RE = re.compile(r"#[^\n]*")
# ``ValueError: width must be positive``: the message is prose.
_EXCEPTION_LINE_RE = re.compile(r"^([ \t]*[\w.]*(?:Error|Exception|Warning|Exit|Interrupt)):[^\n]*", re.M)
_DEF_RE = re.compile(rf"^([ \t]*)(?:async[ \t]+)?def[ \t]+({_NAME})")
# Stack-trace frames: Python's ``File "x.py", line 12`` and the ``x.py:12`` of pytest and linters.
_FRAME_RE = re.compile(r'File "([^"\n]+?\.py)", line (\d+)')
_PATH_LINE_RE = re.compile(r"(?<![\w./\\-])((?:[\w.\\-]*[/\\])*[\w-]+\.py):(\d+)")


@dataclass(frozen=True)
class Terms:
    """What an issue mentions, each in order of first mention, without repeats."""

    paths: tuple[str, ...]  # candidate repository paths (``pkg/mod.py``), possibly only a suffix
    identifiers: tuple[str, ...]
    locations: tuple[tuple[str, int], ...] = ()  # stack-trace frames: (path as written, 1-based line)


class BlockKind(str, enum.Enum):
    """What a span of code is: the unit the ``edit`` scaffold shows and replaces."""

    FUNCTION = "function"
    CLASS = "class"
    IMPORTS = "imports"
    ASSIGNMENT = "assignment"
    STATEMENT = "statement"

    @property
    def compound(self) -> bool:
        """Whether it has a header line and an indented body (a completion continues the header)."""
        return self in (BlockKind.FUNCTION, BlockKind.CLASS)


@dataclass(frozen=True)
class Span:
    """One function in a source: lines ``[start, end)`` of ``source.splitlines(keepends=True)``.

    ``start`` is the ``def`` line (decorators stay outside); ``end`` excludes trailing blank lines.
    """

    name: str
    start: int
    end: int
    indent: str  # the def line's leading whitespace, as written
    kind: BlockKind = BlockKind.FUNCTION


def _blank(text: str, start: int, end: int) -> str:
    # Masking keeps offsets, so positions still order mentions across the different rules.
    return text[:start] + " " * (end - start) + text[end:]


def _mask(text: str, pattern: re.Pattern[str]) -> str:
    return pattern.sub(lambda m: " " * len(m.group(0)), text)


def _code_regions(text: str) -> list[tuple[int, str]]:
    """Fenced blocks and inline code spans, as (offset, code with strings and comments masked)."""
    regions = []
    for m in _FENCE_RE.finditer(text):
        regions.append((m.start(1), m.group(1)))
    fenceless = _mask(text, _FENCE_RE)
    for m in _INLINE_CODE_RE.finditer(fenceless):
        regions.append((m.start(1), m.group(1)))
    cleaned = []
    for offset, code in regions:
        code = _mask(code, _CODE_STRING_RE)
        code = _mask(code, _CODE_COMMENT_RE)
        code = _EXCEPTION_LINE_RE.sub(lambda m: m.group(1) + " " * (len(m.group(0)) - len(m.group(1))), code)
        cleaned.append((offset, code))
    return cleaned


def _keep_identifier(name: str) -> bool:
    return (len(name) >= MIN_IDENTIFIER_LEN and name.lower() not in _STOP_WORDS
            and name not in _BUILTINS and any(c.isalpha() for c in name))


def _normalise_path(path: str) -> str:
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path.lstrip("/")


def _dotted_paths(dotted: str) -> list[str]:
    """``a.b.c`` → ``a/b/c.py``, ``a/b.py``: the module may be any prefix of the dotted name."""
    parts = dotted.split(".")
    # ``self.x`` is an object, ``Foo.bar`` a class, ``e.g`` an abbreviation: none is a module.
    if parts[0] in ("self", "cls") or not parts[0][0].islower() or min(map(len, parts)) < 2:
        return []
    return ["/".join(parts[:k]) + ".py" for k in range(len(parts), 1, -1)]


def _ordered_unique(found: list[tuple[int, str]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for _, item in sorted(found, key=lambda pair: pair[0]):
        seen.setdefault(item, None)
    return tuple(seen)


def issue_terms(text: str) -> Terms:
    """The file paths and identifiers an issue mentions, each in order of first mention.

    Paths: anything ending in ``.py`` (tracebacks and URLs included), and dotted names such as
    ``textkit.text`` read as candidate modules (``textkit/text.py``). Identifiers: every name in
    inline code or fenced blocks (outside their strings and comments), and in prose names called
    (``f(``), attribute parts (``obj.attr``), snake_case and CamelCase names; keywords, builtins,
    common words and names shorter than three characters are dropped.
    """
    paths: list[tuple[int, str]] = []
    names: list[tuple[int, str]] = []
    for m in _PATH_RE.finditer(text):
        paths.append((m.start(1), _normalise_path(m.group(1))))
    prose = _mask(text, _URL_RE)
    for m in _PATH_RE.finditer(prose):
        prose = _blank(prose, m.start(1), m.end(1))
    for m in _DOTTED_RE.finditer(prose):
        dotted = m.group(0)
        if dotted.rsplit(".", 1)[1].lower() in _FILE_EXTENSIONS:
            prose = _blank(prose, m.start(), m.end())
            continue
        paths.extend((m.start(), p) for p in _dotted_paths(dotted))
        names.extend((m.start() + n.start(), n.group(0)) for n in _WORD_RE.finditer(dotted))
    for offset, code in _code_regions(prose):
        names.extend((offset + m.start(1), m.group(1)) for m in _WORD_RE.finditer(code))
    for pattern in (_CALL_RE, _ATTR_RE, _CAMEL_RE):
        names.extend((m.start(1), m.group(1)) for m in pattern.finditer(prose))
    names.extend((m.start(1), m.group(1)) for m in _WORD_RE.finditer(prose) if "_" in m.group(1))
    identifiers = tuple(n for n in _ordered_unique(names) if _keep_identifier(n))
    frames = [(m.start(), (_normalise_path(m.group(1)), int(m.group(2)))) for m in _FRAME_RE.finditer(text)]
    frames += [(m.start(), (_normalise_path(m.group(1)), int(m.group(2)))) for m in _PATH_LINE_RE.finditer(text)]
    locations: dict[tuple[str, int], None] = {}
    for _, frame in sorted(frames):
        locations.setdefault(frame, None)
    return Terms(paths=_ordered_unique(paths), identifiers=identifiers, locations=tuple(locations))


def is_test_path(path: str) -> bool:
    """Whether a path is test code: under a ``test``/``tests``/``testing`` folder, or named like a
    test module (``test_*.py``, ``*_test.py``, ``tests.py``, ``conftest.py``)."""
    parts = path.split("/")
    base = parts[-1]
    return (any(p in _TEST_DIRS for p in parts[:-1]) or base.startswith("test_")
            or base.endswith("_test.py") or base in ("conftest.py", "tests.py", "test.py"))


_INSTALLED_RE = re.compile(r"^.*?/(?:site|dist)-packages/")


def _path_matches(mentioned: str, tracked: str) -> bool:
    # Either may be the longer one: ``text.py`` names ``textkit/text.py``, and a traceback's
    # ``/usr/lib/.../site-packages/textkit/text.py`` names it too; the installed copy's
    # ``site-packages/pkg/mod.py`` also names the checkout's ``src/pkg/mod.py``.
    installed = _INSTALLED_RE.sub("", mentioned)
    return (mentioned == tracked or tracked.endswith("/" + mentioned)
            or mentioned.endswith("/" + tracked) or (installed != mentioned and tracked.endswith("/" + installed)))


def _fresh_lines(lines: list[str]) -> list[bool]:
    """For each line, whether it starts a new logical line: not inside a string, brackets or a
    backslash continuation. Lines that are not fresh belong to the statement above them whatever
    their indentation (a docstring's text at column 0, a call's arguments)."""
    fresh = []
    quote: str | None = None
    depth = 0
    continued = False
    for line in lines:
        fresh.append(quote is None and depth == 0 and not continued)
        continued = False
        i, n = 0, len(line)
        while i < n:
            c = line[i]
            if quote is not None:
                if c == "\\":
                    # Even in a raw string a backslash keeps the next quote from closing it.
                    i += 2
                elif line.startswith(quote, i):
                    i += len(quote)
                    quote = None
                elif c == "\n" and len(quote) == 1:
                    quote = None  # an unterminated one-line string; don't let it swallow the file
                    i += 1
                else:
                    i += 1
                continue
            if c == "#":
                break
            if c in "'\"":
                quote = c * 3 if line.startswith(c * 3, i) else c
                i += len(quote)
                continue
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth = max(0, depth - 1)
            elif c == "\\" and not line[i + 1:].strip():
                continued = True
            i += 1
        if quote is not None and len(quote) == 1 and not line.endswith("\\\n"):
            quote = None
    return fresh


def _width(line: str) -> int:
    indent = line[:len(line) - len(line.lstrip(" \t\f"))]
    return len(indent.expandtabs(8))


def _has_inline_body(header: str) -> bool:
    """Whether a def statement carries its body after the colon (``def f(): return 1``)."""
    # Strings become filler, not blanks: a docstring alone after the colon is a body too.
    header = _CODE_STRING_RE.sub(lambda m: "x" * len(m.group(0)), header)
    header = _mask(header, _CODE_COMMENT_RE)
    depth = 0
    for i, c in enumerate(header):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        elif c == ":" and depth == 0:
            return bool(header[i + 1:].replace("\\", " ").strip())
    return False


def _statement_end(fresh: list[bool], start: int) -> int:
    """Index one past the last line of the logical line that begins at ``start``."""
    end = start + 1
    while end < len(fresh) and not fresh[end]:
        end += 1
    return end


def _body_end(lines: list[str], fresh: list[bool], header_end: int, def_width: int) -> int:
    last = header_end - 1
    for j in range(header_end, len(lines)):
        line = lines[j]
        if not fresh[j]:
            last = j
            continue
        stripped = line.strip()
        if not stripped:
            continue
        if _width(line) > def_width:
            last = j
            continue
        if stripped.startswith("#"):
            # A comment at the def's level may sit inside the body or before the next statement;
            # only a later indented line can tell, so it is kept only then.
            continue
        break
    return last + 1


def functions(source: str) -> list[Span]:
    """Every ``def`` and ``async def`` in a source (methods and nested functions too), in order.

    Goes by indentation: the body is every following line that is blank or more indented than the
    ``def`` line, plus lines continuing a statement (inside strings or brackets); trailing blank lines
    are left out. A multi-line signature ends at its logical line's end; a body on the ``def`` line
    itself makes a span of that statement alone.
    """
    lines = source.splitlines(keepends=True)
    fresh = _fresh_lines(lines)
    spans = []
    for i, line in enumerate(lines):
        m = _DEF_RE.match(line)
        if not m or not fresh[i]:
            continue
        header_end = _statement_end(fresh, i)
        if _has_inline_body("".join(lines[i:header_end])):
            end = header_end
        else:
            end = _body_end(lines, fresh, header_end, _width(line))
        spans.append(Span(name=m.group(2), start=i, end=end, indent=m.group(1)))
    return spans


def def_line(source: str, span: Span) -> str:
    """The span's first line (the ``def`` line, with its indentation and line ending)."""
    return source.splitlines(keepends=True)[span.start]


def header(source: str, span: Span) -> str:
    """The span's whole ``def`` statement up to its colon's line (several lines for a long signature)."""
    lines = source.splitlines(keepends=True)
    return "".join(lines[span.start:_statement_end(_fresh_lines(lines), span.start)])


def function_text(source: str, span: Span) -> str:
    """The span's lines, as in the source."""
    return "".join(source.splitlines(keepends=True)[span.start:span.end])


def _enclosing_names(lines: list[str], fresh: list[bool], span: Span) -> set[str]:
    """Names of the classes and functions a span sits in (by indentation)."""
    names = set()
    width = _width(lines[span.start])
    for line, starts in zip(reversed(lines[:span.start]), reversed(fresh[:span.start])):
        if width == 0:
            break
        stripped = line.strip()
        if not starts or not stripped or stripped.startswith("#") or _width(line) >= width:
            continue
        width = _width(line)
        m = re.match(rf"[ \t]*(?:async[ \t]+)?(?:class|def)[ \t]+({_NAME})", line)
        if m:
            names.add(m.group(1))
    return names




# -- repository-scale ranking: what the issue names, plus BM25 over file contents ----------------

# A path the issue names with a folder (``src/pkg/mod.py``) is near certain; a bare file name
# (``utils.py``) is often the reporter's own file or log output, so it counts for less.
BARE_PATH_SCORE = 30.0
# A file holding a stack-trace frame: the code that ran. Counted once per file.
FRAME_SCORE = 40.0
# The best BM25 match gets this much, the others in proportion: it orders files the issue names
# nothing in, and breaks ties among those it does, without outweighing a definition.
BM25_WEIGHT = 15.0
# Files above this size are generated data or vendored bundles, not the code to fix.
MAX_FILE_BYTES = 1_000_000

_TOKEN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SUBWORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_DEFINITION_RE = re.compile(rf"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+({_NAME})|^({_NAME})[ \t]*(?::[^=\n]*)?=(?!=)",
                            re.M)
# English function words carry no ranking signal; code keywords are in every file.
_ENGLISH_STOP = {"a", "an", "is", "are", "was", "be", "been", "it", "its", "of", "on", "in", "to", "as", "at",
                 "by", "or", "if", "so", "do", "does", "did", "has", "have", "had", "can", "will", "we", "you",
                 "they", "he", "she", "my", "our", "your", "their", "there", "these", "those", "than", "then",
                 "just", "like", "only", "very", "more", "any", "all", "no", "yes", "i", "me", "us", "them"}
_BM25_STOP = _ENGLISH_STOP | {w.lower() for w in keyword.kwlist} | {"the", "and", "for", "not", "but", "this",
                                                                  "that", "with", "from", "into", "self", "cls"}


@dataclass(frozen=True)
class RankedFile:
    """A file and its score (higher is likelier), as :func:`rank_by_content` gives them."""

    path: str
    score: float


def _stem(word: str) -> str:
    # ``blueprints`` finds ``blueprint``: plural and third-person s only; real stemming buys little here.
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def code_tokens(text: str) -> list[str]:
    """BM25 tokens of code or prose: each identifier lowercased, plus its snake_case and CamelCase
    parts when it has several (``DEFAULT_LOG_FORMAT`` gives ``default_log_format``, ``default``,
    ``log``, ``format``), plural ``s`` dropped; stop words and one-letter tokens left out."""
    tokens = []
    for m in _TOKEN_RE.finditer(text):
        word = m.group(0)
        parts = [p.lower() for chunk in word.split("_") for p in _SUBWORD_RE.findall(chunk)]
        for token in ([word.lower()] if len(parts) > 1 else []) + parts:
            if len(token) > 1 and token not in _BM25_STOP:
                tokens.append(_stem(token))
    return tokens


def bm25_scores(query: list[str], documents: list[list[str]]) -> np.ndarray:
    """BM25 score of each document (a token list) for the query (``bm25s``, its default k1/b)."""
    import bm25s  # deferred: only ranking needs it, and importing it takes a moment

    if not documents or not query:
        return np.zeros(len(documents))
    index = bm25s.BM25()
    # An empty document would be dropped by some tokenizers; one placeholder keeps positions aligned.
    index.index([doc or ["\0"] for doc in documents], show_progress=False)
    known = [t for t in query if t in index.vocab_dict]
    return np.asarray(index.get_scores(known), dtype=float) if known else np.zeros(len(documents))


def candidate_files(tree: list[tuple[str, int]]) -> list[str]:
    """The paths worth ranking from ``(path, size)`` pairs (``git ls-tree -r -l``): non-test ``.py``
    files under :data:`MAX_FILE_BYTES`; when a repository has none, every file under that size."""
    small = [p for p, size in tree if size <= MAX_FILE_BYTES]
    code = [p for p in small if p.endswith(".py") and not is_test_path(p)]
    return code or [p for p in small if p.endswith(".py")] or small


def parse_ls_tree(output: str) -> list[tuple[str, int, str]]:
    """``(path, size, mode)`` of each blob in ``git ls-tree -r -l -z`` output (submodules and
    symlinks left out: there is no text to rank or edit)."""
    entries = []
    for record in output.split("\0"):
        meta, _, path = record.partition("\t")
        fields = meta.split()
        if len(fields) == 4 and fields[1] == "blob" and fields[0] in ("100644", "100755"):
            entries.append((path, int(fields[3]) if fields[3].isdigit() else 0, fields[0]))
    return entries


def _frame_paths(terms: Terms, paths: list[str]) -> dict[str, list[int]]:
    lines: dict[str, list[int]] = {}
    for mentioned, line in terms.locations:
        for path in paths:
            if _path_matches(mentioned, path):
                lines.setdefault(path, []).append(line)
    return lines


def rank_by_content(terms: Terms, problem: str, contents: dict[str, str], limit: int = 5) -> list[RankedFile]:
    """The ``limit`` likeliest of ``contents`` (path -> text), best first; never empty when
    ``contents`` is not.

    Score: a path the issue names (:data:`PATH_SCORE` with a folder, :data:`BARE_PATH_SCORE` bare),
    a stack-trace frame in the file (:data:`FRAME_SCORE`), each distinct identifier the file defines
    (:data:`DEFINE_SCORE`; ``def``/``class`` or module-level assignment) or only uses
    (:data:`MENTION_SCORE`), and BM25 of the file (its path's words included) against the issue,
    scaled to at most :data:`BM25_WEIGHT`. Ties go by path.
    """
    paths = list(contents)
    scores = dict.fromkeys(paths, 0.0)
    for mentioned in terms.paths:
        for path in paths:
            if _path_matches(mentioned, path):
                scores[path] += PATH_SCORE if "/" in mentioned else BARE_PATH_SCORE
    frames = _frame_paths(terms, paths)
    for path in frames:
        scores[path] += FRAME_SCORE
    # The innermost frame in the repository is where it went wrong, more often than not.
    innermost = [p for mentioned, _ in reversed(terms.locations) for p in paths if _path_matches(mentioned, p)]
    if innermost:
        scores[innermost[0]] += FRAME_SCORE
    wanted = set(terms.identifiers)
    if wanted:
        found: dict[str, tuple[set[str], set[str]]] = {}
        for path, text in contents.items():
            used = set(_TOKEN_RE.findall(text)) & wanted
            if used:
                found[path] = (used, {m.group(1) or m.group(2) for m in _DEFINITION_RE.finditer(text)} & used)
        # A name every file uses (``pytest`` in pytest, pasted ``pip freeze`` output) says little:
        # each counts from 1 (a name in one file) down to 1/2 (in all). Half, not all the way to 0:
        # on the bench (bench/localize.py) full IDF weighting lost more than it gained.
        df: dict[str, int] = {}
        for used, _ in found.values():
            for name in used:
                df[name] = df.get(name, 0) + 1
        n = len(paths) + 1
        rarity = {name: 0.5 + 0.5 * math.log(n / count) / math.log(n) for name, count in df.items()}
        for path, (used, own) in found.items():
            scores[path] += (DEFINE_SCORE * sum(rarity[x] for x in own)
                             + MENTION_SCORE * sum(rarity[x] for x in used - own))
    bm25 = bm25_scores(code_tokens(problem), [code_tokens(p.replace("/", " ")) + code_tokens(contents[p])
                                               for p in paths])
    top = float(bm25.max()) if len(bm25) else 0.0
    if top > 0:
        for path, value in zip(paths, bm25):
            scores[path] += BM25_WEIGHT * float(value) / top
    ranked = sorted(paths, key=lambda p: (-scores[p], p))
    return [RankedFile(p, scores[p]) for p in ranked[:limit]]


_IMPORT_RE = re.compile(r"(?:import|from)[ \t]")
_ASSIGN_RE = re.compile(rf"({_NAME})(?:[ \t]*,[ \t]*{_NAME})*[ \t]*(?::[^=\n]*)?=(?!=)")
_CLAUSES = {"elif", "else", "except", "finally", "case"}
_HEADER_RE = re.compile(rf"(?:async[ \t]+)?(def|class)[ \t]+({_NAME})")


def _is_statement_start(line: str, is_fresh: bool) -> bool:
    stripped = line.strip()
    return is_fresh and bool(stripped) and not stripped.startswith("#") and _width(line) == 0


def blocks(source: str) -> list[Span]:
    """The source's top-level statements as spans, in order: each function and class (from its
    ``def``/``class`` line; decorators stay outside), each group of consecutive import lines, each
    assignment (named after its first target) and each other statement (a compound ``if``/``try``
    with its body). Blank lines, comments and decorators between them belong to none."""
    lines = source.splitlines(keepends=True)
    fresh = _fresh_lines(lines)
    spans: list[Span] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not _is_statement_start(line, fresh[i]) or line.startswith("@"):
            i += 1
            continue
        header_end = _statement_end(fresh, i)
        m = _HEADER_RE.match(line)
        if m:
            inline = _has_inline_body("".join(lines[i:header_end]))
            end = header_end if inline else _body_end(lines, fresh, header_end, 0)
            kind = BlockKind.FUNCTION if m.group(1) == "def" else BlockKind.CLASS
            spans.append(Span(m.group(2), i, end, "", kind))
        elif _IMPORT_RE.match(line):
            end = header_end
            # An import group: import statements on the lines right after, no blank line between.
            while end < len(lines) and _is_statement_start(lines[end], fresh[end]) and _IMPORT_RE.match(lines[end]):
                end = _statement_end(fresh, end)
            spans.append(Span("imports", i, end, "", BlockKind.IMPORTS))
        else:
            a = _ASSIGN_RE.match(line)
            # Indented lines after a top-level simple statement would be a syntax error, so taking
            # them as a body only ever gives ``if``/``try``/``for``/``with`` theirs.
            end = header_end if a else _body_end(lines, fresh, header_end, 0)
            word = _TOKEN_RE.match(line)
            name = a.group(1) if a else (word.group(0) if word else "statement")
            if name in _CLAUSES and spans and spans[-1].kind is BlockKind.STATEMENT:
                # ``except``/``else``/``finally`` continue the ``try``/``if``/``for`` above.
                spans[-1] = Span(spans[-1].name, spans[-1].start, end, "", BlockKind.STATEMENT)
            else:
                spans.append(Span(name, i, end, "", BlockKind.ASSIGNMENT if a else BlockKind.STATEMENT))
        i = max(end, i + 1)
    return spans


def code_spans(source: str) -> list[Span]:
    """What may be shown or replaced in a source: its top-level :func:`blocks`, then every method
    and nested function (so that one method of a class too big to show can be)."""
    return blocks(source) + [s for s in functions(source) if s.indent]


def span_text(source: str, span: Span) -> str:
    """The span's lines, as in the source (any kind of block)."""
    return function_text(source, span)


@dataclass(frozen=True)
class RankedSpan:
    """A span of a file and its score, as :func:`rank_spans` gives them."""

    path: str
    span: Span
    score: float


# Per span: its name is an identifier the issue mentions; it holds a stack-trace frame's line;
# each distinct mentioned identifier it contains; the best BM25 match among the spans.
SPAN_NAME_SCORE = 10.0
SPAN_FRAME_SCORE = 20.0
SPAN_IDENTIFIER_SCORE = 2.0
SPAN_BM25_WEIGHT = 10.0


def rank_spans(terms: Terms, problem: str, sources: dict[str, str], file_bonus: dict[str, float] | None = None
               ) -> list[RankedSpan]:
    """Every span of :func:`code_spans` in ``sources``, best first: its name mentioned by the
    issue, a stack-trace frame inside it, the mentioned identifiers it contains, and its BM25 score
    against the issue; plus ``file_bonus[path]`` (the file's rank). Ties go by file order, then position."""
    bonus = file_bonus or {}
    wanted = set(terms.identifiers)
    frames = _frame_paths(terms, list(sources))
    items: list[tuple[str, Span, str]] = []
    split = {}
    for path, source in sources.items():
        lines = source.splitlines(keepends=True)
        split[path] = (lines, _fresh_lines(lines))
        items.extend((path, span, span_text(source, span)) for span in code_spans(source))
    bm25 = bm25_scores(code_tokens(problem), [code_tokens(text) for _, _, text in items])
    top = float(bm25.max()) if len(bm25) else 0.0
    ranked = []
    for n, (path, span, text) in enumerate(items):
        score = bonus.get(path, 0.0) + (SPAN_BM25_WEIGHT * float(bm25[n]) / top if top > 0 else 0.0)
        if span.name in wanted:
            # A named class counts for half: its named method, when there is one, is the better unit.
            score += SPAN_NAME_SCORE / 2 if span.kind is BlockKind.CLASS else SPAN_NAME_SCORE
            if span.indent and _enclosing_names(split[path][0], split[path][1], span) & wanted:
                # ``Reader.read``: the ``read`` inside ``Reader``, not another class's.
                score += SPAN_NAME_SCORE / 2
        if span.kind is not BlockKind.CLASS:
            # A class holds every name its methods use: counting them would rank it above the
            # one method the issue is about, and a whole class is a poor thing to rewrite.
            score += SPAN_IDENTIFIER_SCORE * len(set(_TOKEN_RE.findall(text)) & wanted)
        if any(span.start < line <= span.end for line in frames.get(path, [])):
            score += SPAN_FRAME_SCORE
        ranked.append((n, RankedSpan(path, span, score)))
    ranked.sort(key=lambda pair: (-pair[1].score, pair[0]))
    return [r for _, r in ranked]
