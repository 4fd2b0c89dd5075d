"""Turns a model's answer into new file contents, host-side: aider-style SEARCH/REPLACE blocks, a
base model's completion of a function body, or a chat model's rewritten function.

All of it is string work on contents the host already holds; writing files back is the caller's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.localize import Span, _fresh_lines, _has_inline_body, _statement_end, _width, functions

_SEARCH_RE = re.compile(r"^\s*<{5,9}\s*SEARCH\s*$")
_DIVIDER_RE = re.compile(r"^\s*={5,9}\s*$")
_REPLACE_RE = re.compile(r"^\s*>{5,9}\s*REPLACE\s*$")
_FENCE_LINE_RE = re.compile(r"^\s*```")
_CLOSING_FENCE_RE = re.compile(r"^\s*```+\s*$")
_PATH_DECORATION_RE = re.compile(r"^(?:#+|//)?\s*(?:file(?:name)?\s*:)?\s*", re.I)
_LOOKS_LIKE_PATH_RE = re.compile(r"^[\w./\\-]+$")
# Lines a base model writes when it goes on to the next example of the prompt's pattern.
_MARKER_RE = re.compile(r"^\s*(?:```|#*\s*(?:fixed|buggy)\s+version\b)", re.I)


class EditError(ValueError):
    """An edit that cannot be applied; the message says which file and search text."""


@dataclass(frozen=True)
class Edit:
    """Replace ``search`` by ``replace`` in ``path`` (None when the answer named no file)."""

    path: str | None
    search: str
    replace: str


def _block_path(line: str) -> str | None:
    """A path from the line above a SEARCH marker, or None when the line is prose."""
    text = line.strip().strip("`*").strip()
    text = _PATH_DECORATION_RE.sub("", text, count=1).strip().strip("`*").rstrip(":").strip()
    return text if text and _LOOKS_LIKE_PATH_RE.match(text) else None


def parse_search_replace(text: str) -> list[Edit]:
    """The SEARCH/REPLACE blocks in a model's answer, in order.

    The path is the last non-empty line before ``<<<<<<< SEARCH`` that is not a fence (decorations
    such as backticks, ``#`` or ``File:`` are stripped; prose gives no path). A block with no path
    line of its own after another block takes that block's path, as aider does. Markers may have
    5 to 9 characters. A block ends at ``>>>>>>> REPLACE`` or a closing fence; one cut off by the
    end of the answer is dropped, since a truncated replacement would break the file.
    """
    lines = text.splitlines(keepends=True)
    edits: list[Edit] = []
    i = 0
    previous_end = 0
    while i < len(lines):
        if not _SEARCH_RE.match(lines[i]):
            i += 1
            continue
        path = None
        for above in reversed(lines[previous_end:i]):
            if above.strip() and not _FENCE_LINE_RE.match(above):
                path = _block_path(above)
                break
        else:
            if edits:
                path = edits[-1].path
        j = i + 1
        while j < len(lines) and not _DIVIDER_RE.match(lines[j]):
            j += 1
        k = j + 1
        while k < len(lines) and not (_REPLACE_RE.match(lines[k]) or _CLOSING_FENCE_RE.match(lines[k])):
            k += 1
        if k >= len(lines):
            break
        edits.append(Edit(path=path, search="".join(lines[i + 1:j]), replace="".join(lines[j + 1:k])))
        i = previous_end = k + 1
    return edits


def _indent_of(line: str) -> str:
    return line[:len(line) - len(line.lstrip(" \t"))]


def _common_indent(lines: list[str]) -> str:
    indents = [_indent_of(line) for line in lines if line.strip()]
    if not indents:
        return ""
    common = indents[0]
    for indent in indents[1:]:
        while not indent.startswith(common):
            common = common[:-1]
    return common


def _line_ending(line: str) -> str:
    return line[len(line.rstrip("\r\n")):]


def _reindent(lines: list[str], old: str, new: str) -> list[str]:
    """Lines moved from indentation ``old`` to ``new``: the ``old`` prefix is swapped for ``new``;
    a line not starting with ``old`` shifts by the width difference, losing at most its own
    leading whitespace, never code."""
    shift = len(new.expandtabs(8)) - len(old.expandtabs(8))
    out = []
    for line in lines:
        if not line.strip():
            out.append(_line_ending(line))
        elif line.startswith(old):
            out.append(new + line[len(old):])
        elif shift >= 0:
            out.append(" " * shift + line)
        else:
            strip = min(-shift, len(_indent_of(line)))
            out.append(line[strip:])
    return out


def _find(source_lines: list[str], search_lines: list[str], same) -> list[int]:
    n = len(search_lines)
    return [i for i in range(len(source_lines) - n + 1)
            if all(same(a, b) for a, b in zip(source_lines[i:i + n], search_lines))]


def _find_shifted(source_lines: list[str], search_lines: list[str]) -> list[tuple[int, str]]:
    """Places matching once both sides lose their common indentation, with the source's indent."""
    search_body = [_dedented(line, _common_indent(search_lines)) for line in search_lines]
    n = len(search_lines)
    found = []
    for i in range(len(source_lines) - n + 1):
        window = source_lines[i:i + n]
        indent = _common_indent(window)
        if [_dedented(line, indent) for line in window] == search_body:
            found.append((i, indent))
    return found


def _dedented(line: str, indent: str) -> str:
    return line[len(indent):].rstrip() if line.strip() else ""


def _same_exact(a: str, b: str) -> bool:
    return a.rstrip("\r\n") == b.rstrip("\r\n")


def _same_trimmed(a: str, b: str) -> bool:
    return a.rstrip() == b.rstrip()


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def apply_edit(source: str, search: str, replace: str, path: str | None = None) -> str:
    """``source`` with the one place matching ``search`` replaced by ``replace``.

    Matches whole lines: exactly first, then ignoring trailing whitespace, then ignoring a uniform
    difference in leading indentation (the replacement is shifted by the same amount). Raises
    EditError when nothing matches or a pass finds several places. An empty search on an empty
    source gives ``replace`` (a new file). ``path`` only names the file in error messages.
    """
    where = f"{path}: " if path else ""
    if not search.strip():
        if not source:
            return replace
        raise EditError(f"{where}empty search text on a non-empty file")
    source_lines = source.splitlines(keepends=True)
    search_lines = search.splitlines(keepends=True)
    while search_lines and not search_lines[-1].strip():
        search_lines.pop()  # a model's trailing blank line is not part of what it means to match
    replace_lines = replace.splitlines(keepends=True)
    n = len(search_lines)
    # Each pass runs only when the stricter one found nothing, so a stricter unique match wins
    # over looser ambiguous ones.
    found = _find(source_lines, search_lines, _same_exact) or _find(source_lines, search_lines, _same_trimmed)
    if not found:
        shifted = _find_shifted(source_lines, search_lines)
        if len(shifted) == 1:
            replace_lines = _reindent(replace_lines, _common_indent(search_lines), shifted[0][1])
        found = [i for i, _ in shifted]
    if not found:
        raise EditError(f"{where}search text not found: {_first_line(search)!r}")
    if len(found) > 1:
        raise EditError(f"{where}search text matches {len(found)} places: {_first_line(search)!r}")
    start = found[0]
    end = start + n
    # A CRLF file stays CRLF: the model writes "\n" whatever the file uses.
    replace_lines = _with_ending(replace_lines, _line_ending(source_lines[start]) or "\n")
    if replace_lines:
        last_ending = _line_ending(source_lines[end - 1])
        if last_ending and not _line_ending(replace_lines[-1]):
            replace_lines[-1] += last_ending
        elif not last_ending and end == len(source_lines):
            replace_lines[-1] = replace_lines[-1].rstrip("\r\n")  # keep the file's missing final newline
    return "".join(source_lines[:start] + replace_lines + source_lines[end:])


def _with_ending(lines: list[str], ending: str) -> list[str]:
    """Lines whose line ending is replaced by ``ending`` (a line without one keeps none)."""
    return [line.rstrip("\r\n") + ending if _line_ending(line) else line for line in lines]


def fenced_code(text: str) -> list[str]:
    """The contents of each ``` fenced block (any language tag), in order; a block left open runs
    to the end of the text, as a model cut off by its token limit leaves it."""
    blocks = []
    current: list[str] | None = None
    for line in text.splitlines(keepends=True):
        if current is None:
            if _FENCE_LINE_RE.match(line):
                current = []
        elif _CLOSING_FENCE_RE.match(line):
            blocks.append("".join(current))
            current = None
        else:
            current.append(line)
    if current is not None:
        blocks.append("".join(current))
    return blocks


def completed_function(def_line: str, completion: str) -> str:
    """The function a base model wrote: ``def_line`` (the prompt's last line, the function's first)
    followed by the body it completed.

    The body ends at the first line that is not blank, not inside a string or brackets, and no
    more indented than the ``def`` (the model moved on), or at a fence or a ``Fixed version`` /
    ``Buggy version`` marker. Trailing blank lines go; the result ends with a newline. The
    completion may first finish a signature the ``def`` line left open; a ``def`` line carrying its
    own body (``def f(): return 1``) is complete as it is. Raises EditError when there is no body.
    """
    text = def_line + completion
    lines = text.splitlines(keepends=True)
    if not lines:
        raise EditError("the completion has no function body")
    fresh = _fresh_lines(lines)
    header_end = _statement_end(fresh, 0)
    if _has_inline_body("".join(lines[:header_end])):
        # ``def f(): return 1``: a complete function; anything indented after it is not its body.
        return "".join(lines[:header_end]).rstrip("\n") + "\n"
    def_width = _width(lines[0])
    end = header_end
    for j in range(header_end, len(lines)):
        line = lines[j]
        if _MARKER_RE.match(line):
            break
        if not line.strip():
            continue
        if fresh[j] and _width(line) <= def_width:
            break
        end = j + 1
    if end == header_end:
        raise EditError(f"the completion has no function body: {_first_line(def_line)!r}")
    body = lines[:end]
    if not body[-1].endswith("\n"):
        body[-1] += "\n"
    return "".join(body)


def completed_statements(completion: str) -> str:
    """The top-level statements a base model wrote after ``# Fixed version:`` for a block that is
    not a function or class (a constant, an import group): everything up to the first blank line
    outside strings and brackets, a fence or a version marker. Raises EditError when it is empty."""
    lines = completion.lstrip("\n").splitlines(keepends=True)
    fresh = _fresh_lines(lines)
    end = 0
    for j, line in enumerate(lines):
        if _MARKER_RE.match(line) or (fresh[j] and not line.strip()):
            break
        end = j + 1
    code = "".join(lines[:end])
    if not code.strip():
        raise EditError("the completion has no code before its first blank line")
    return code if code.endswith("\n") else code + "\n"


def rewritten_function(text: str, name: str) -> str | None:
    """The function ``name`` as a chat model rewrote it, from its fenced blocks (or the whole text
    when it used none), or None when it wrote no such function.

    The last block defining it wins: models tend to quote the original before giving the fix.
    """
    for block in reversed(fenced_code(text) or [text]):
        spans = [s for s in functions(block) if s.name == name]
        if spans:
            lines = block.splitlines(keepends=True)
            code = "".join(lines[spans[0].start:spans[0].end])
            return code if code.endswith("\n") else code + "\n"
    return None


def replace_span(source: str, span: Span, new_code: str) -> str:
    """``source`` with the span's lines replaced by ``new_code``, shifted so that its first line
    has the span's indentation (every line moves by the same amount). The file keeps its
    trailing-newline state."""
    lines = source.splitlines(keepends=True)
    new_lines = new_code.splitlines(keepends=True)
    ending = (_line_ending(lines[span.start]) if span.start < len(lines) else "") or "\n"
    if new_lines:
        new_lines = _reindent(new_lines, _indent_of(new_lines[0]), span.indent)
        if not new_lines[-1].endswith("\n"):
            new_lines[-1] += "\n"
        new_lines = _with_ending(new_lines, ending)  # a CRLF file stays CRLF
    result = "".join(lines[:span.start] + new_lines + lines[span.end:])
    if span.end >= len(lines) and source and not source.endswith("\n"):
        result = result.rstrip("\r\n")  # the function was the file's unterminated last line(s)
    return result
