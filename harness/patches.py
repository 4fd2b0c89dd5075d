"""Patches as data: what a diff touches, and its normalised form, whose hash keys the evaluation
cache so that two patches differing only in noise share one set of test runs.

Normalising may merge only patches that produce the same tree when they apply. It drops header noise
(``diff --git`` and ``index`` lines, timestamps, the function text after ``@@``, blank lines at the
end) and puts files in path order. It keeps everything that can change the result: every character
of every line (whitespace inside and at the end of lines included), hunk positions and order, mode
changes, renames, files created or deleted, and binary blobs byte for byte.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError


class Change(str, enum.Enum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"


@dataclass(frozen=True)
class FileDiff:
    """One file a patch touches, with the text of the lines it adds (for the guards)."""

    path: str
    change: Change
    added_lines: tuple[str, ...] = ()
    binary: bool = False


class PatchParseError(ValueError):
    """A patch that is not a unified diff."""


def is_empty(patch: str | None) -> bool:
    return patch is None or not patch.strip()


def files(patch: str | None) -> list[FileDiff]:
    """The files ``patch`` touches; raises PatchParseError for text that is not a diff."""
    if is_empty(patch):
        return []
    try:
        parsed = PatchSet(patch)
    except UnidiffParseError as err:
        raise PatchParseError(str(err)) from None
    if not parsed and patch.strip():
        raise PatchParseError("no file headers (---/+++ or 'diff --git') found")
    out = []
    for patched in parsed:
        change = Change.ADDED if patched.is_added_file else Change.DELETED if patched.is_removed_file else Change.MODIFIED
        added = tuple(line.value.rstrip("\n") for hunk in patched for line in hunk if line.is_added)
        out.append(FileDiff(patched.path, change, added, bool(patched.is_binary_file)))
    return out


def normalise(patch: str | None) -> str:
    """A canonical text for ``patch``: files sorted by path, header noise dropped, every line that can
    change the result kept as it is. Text unidiff cannot read, and binary patches, are kept whole
    (less blank lines at the end), so they still hash to themselves."""
    if is_empty(patch):
        return ""
    try:
        parsed = PatchSet(_clean_headers(patch))
    except UnidiffParseError:
        parsed = None
    if not parsed or any(p.is_binary_file for p in parsed):
        return patch.rstrip("\n") + "\n"
    parts = []
    for patched in sorted(parsed, key=lambda p: (p.source_file, p.target_file)):
        parts.append(f"--- {patched.source_file}\n+++ {patched.target_file}\n")
        # Modes and renames change the tree; index hashes and similarity scores do not.
        parts.extend(f"{line.rstrip()}\n" for line in (patched.patch_info or ()) if line.startswith(_MEANINGFUL_HEADERS))
        for hunk in patched:
            parts.append(f"@@ -{hunk.source_start},{hunk.source_length} +{hunk.target_start},{hunk.target_length} @@\n")
            for line in hunk:
                text = f"{line.line_type}{line.value}"
                parts.append(text if text.endswith("\n") else text + "\n")
    return "".join(parts)


_HEADER_PREFIXES = ("diff ", "--- ", "+++ ", "index ", "new file", "deleted file", "old mode", "new mode")
_MEANINGFUL_HEADERS = ("old mode", "new mode", "new file mode", "deleted file mode", "rename from", "rename to",
                       "copy from", "copy to")


def _clean_headers(patch: str) -> str:
    """Header lines without trailing whitespace (unidiff rejects some otherwise), no blank lines at the end."""
    lines = [line.rstrip() if line.startswith(_HEADER_PREFIXES) else line for line in patch.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def patch_hash(patch: str | None) -> str:
    """sha256 of the normalised patch (that of "" for an empty or missing one)."""
    return hashlib.sha256(normalise(patch).encode()).hexdigest()
