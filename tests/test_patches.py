"""Patches as data: the files a diff touches, and a hash that ignores only what cannot change the tree."""

import hashlib

import pytest

from harness.patches import Change, FileDiff, PatchParseError, files, is_empty, normalise, patch_hash

A_HUNK_1 = """\
@@ -1,4 +1,4 @@
 import os
-LIMIT = 10
+LIMIT = 100
 
 
"""
A_HUNK_2 = """\
@@ -20,6 +20,7 @@ def clamp(value):
     if value < 0:
         return 0
     if value > LIMIT:
+        log.debug("clamped %s", value)
         return LIMIT
     return value
 
"""
B_HUNK = """\
@@ -5,3 +5,3 @@ class Reader:
     def read(self, path):
-        return open(path).read()
+        return open(path, encoding="utf-8").read()
 
"""

A_HEADER = """\
diff --git a/src/pkg/limits.py b/src/pkg/limits.py
index 3b18e51..a9c4f2d 100644
--- a/src/pkg/limits.py
+++ b/src/pkg/limits.py
"""
B_HEADER = """\
diff --git a/src/pkg/reader.py b/src/pkg/reader.py
index 0d1f7a2..88be9c1 100644
--- a/src/pkg/reader.py
+++ b/src/pkg/reader.py
"""

PATCH = A_HEADER + A_HUNK_1 + A_HUNK_2 + B_HEADER + B_HUNK

NEW_FILE = """\
diff --git a/src/pkg/util.py b/src/pkg/util.py
new file mode 100644
index 0000000..e69de29
--- /dev/null
+++ b/src/pkg/util.py
@@ -0,0 +1,3 @@
+def double(x):
+    return 2 * x
+
"""

DELETED_FILE = """\
diff --git a/src/pkg/legacy.py b/src/pkg/legacy.py
deleted file mode 100644
index 5716ca5..0000000
--- a/src/pkg/legacy.py
+++ /dev/null
@@ -1,2 +0,0 @@
-def old():
-    pass
"""


# -- normalise / patch_hash ---------------------------------------------------------------------------

def test_the_hash_of_a_patch_is_stable():
    assert patch_hash(PATCH) == patch_hash(PATCH)
    assert len(patch_hash(PATCH)) == 64


def test_trailing_whitespace_on_an_added_line_changes_the_hash():
    # It changes the file the patch produces (and a test that reads the file may see it).
    noisy = PATCH.replace("+LIMIT = 100\n", "+LIMIT = 100  \n")
    assert patch_hash(noisy) != patch_hash(PATCH)


def test_whitespace_inside_a_line_changes_the_hash():
    noisy = PATCH.replace("+LIMIT = 100\n", "+LIMIT  =  100\n")
    assert patch_hash(noisy) != patch_hash(PATCH)


def test_a_mode_change_changes_the_hash():
    # The same content change, once with the file made executable: another tree.
    executable = A_HEADER.replace("index 3b18e51..a9c4f2d 100644\n", "old mode 100644\nnew mode 100755\nindex 3b18e51..a9c4f2d\n")
    assert patch_hash(executable + A_HUNK_1) != patch_hash(A_HEADER + A_HUNK_1)
    assert "new mode 100755" in normalise(executable + A_HUNK_1)


def test_header_noise_and_file_order_together_do_not_change_the_hash():
    noisy = (B_HEADER.replace("index 0d1f7a2..88be9c1", "index 1111111..2222222") + B_HUNK
             + A_HEADER.replace("diff --git a/src/pkg/limits.py b/src/pkg/limits.py\n", "")
             .replace("--- a/src/pkg/limits.py\n", "--- a/src/pkg/limits.py\t2024-03-01 12:00:00 +0000\n")
             + A_HUNK_1 + A_HUNK_2.replace(" @@ def clamp(value):", " @@") + "\n\n")
    assert patch_hash(noisy) == patch_hash(PATCH)


@pytest.mark.parametrize("tail", ["\n", "\n\n"])
def test_trailing_blank_lines_after_the_patch_do_not_change_the_hash(tail):
    assert patch_hash(PATCH + tail) == patch_hash(PATCH)
    assert patch_hash(NEW_FILE + tail) == patch_hash(NEW_FILE)


@pytest.mark.parametrize("header", ["diff --git a/src/pkg/limits.py b/src/pkg/limits.py", "+++ b/src/pkg/limits.py",
                                    "--- a/src/pkg/limits.py", "index 3b18e51..a9c4f2d 100644"])
def test_trailing_whitespace_on_a_header_line_does_not_change_the_hash(header):
    noisy = PATCH.replace(header + "\n", header + "  \n")
    assert noisy != PATCH
    assert patch_hash(noisy) == patch_hash(PATCH)


def test_the_order_of_files_does_not_change_the_hash():
    reordered = B_HEADER + B_HUNK + A_HEADER + A_HUNK_1 + A_HUNK_2
    assert patch_hash(reordered) == patch_hash(PATCH)


def test_the_order_of_hunks_changes_the_hash():
    # git apply takes misordered hunks, but the official fallback `patch` garbles them: the trees differ.
    reordered = A_HEADER + A_HUNK_2 + A_HUNK_1 + B_HEADER + B_HUNK
    assert patch_hash(reordered) != patch_hash(PATCH)


def test_diff_git_and_index_lines_do_not_change_the_hash():
    plain = "".join(line for line in PATCH.splitlines(keepends=True)
                    if not line.startswith(("diff --git", "index ")))
    other_index = PATCH.replace("index 3b18e51..a9c4f2d", "index 1234567..89abcde")
    assert plain != PATCH
    assert patch_hash(plain) == patch_hash(PATCH)
    assert patch_hash(other_index) == patch_hash(PATCH)


def test_timestamps_and_hunk_headings_do_not_change_the_hash():
    stamped = PATCH.replace("--- a/src/pkg/limits.py\n", "--- a/src/pkg/limits.py\t2024-03-01 12:00:00.000000000 +0000\n")
    no_heading = PATCH.replace("@@ -20,6 +20,7 @@ def clamp(value):", "@@ -20,6 +20,7 @@")
    assert patch_hash(stamped) == patch_hash(PATCH)
    assert patch_hash(no_heading) == patch_hash(PATCH)


def test_a_changed_added_line_changes_the_hash():
    changed = PATCH.replace("+LIMIT = 100", "+LIMIT = 1000")
    assert patch_hash(changed) != patch_hash(PATCH)


def test_a_changed_removed_line_changes_the_hash():
    changed = PATCH.replace("-LIMIT = 10\n", "-LIMIT = 20\n")
    assert changed != PATCH
    assert patch_hash(changed) != patch_hash(PATCH)


def test_changed_indentation_of_an_added_line_changes_the_hash():
    changed = PATCH.replace('+        log.debug("clamped %s", value)', '+    log.debug("clamped %s", value)')
    assert changed != PATCH
    assert patch_hash(changed) != patch_hash(PATCH)


def test_a_hunk_at_another_position_changes_the_hash():
    moved = PATCH.replace("@@ -20,6 +20,7 @@", "@@ -30,6 +30,7 @@")
    assert patch_hash(moved) != patch_hash(PATCH)


def test_touching_a_different_file_changes_the_hash():
    other = PATCH.replace("src/pkg/reader.py", "src/pkg/writer.py")
    assert patch_hash(other) != patch_hash(PATCH)


def test_dropping_a_file_changes_the_hash():
    assert patch_hash(A_HEADER + A_HUNK_1 + A_HUNK_2) != patch_hash(PATCH)


def test_creating_a_file_hashes_differently_from_modifying_it():
    modified = NEW_FILE.replace("new file mode 100644\n", "").replace("--- /dev/null", "--- a/src/pkg/util.py") \
        .replace("@@ -0,0 +1,3 @@", "@@ -1,0 +1,3 @@")
    assert patch_hash(modified) != patch_hash(NEW_FILE)


@pytest.mark.parametrize("empty", [None, "", "   \n\n"])
def test_an_empty_or_missing_patch_hashes_like_the_empty_string(empty):
    assert normalise(empty) == ""
    assert patch_hash(empty) == hashlib.sha256(b"").hexdigest()


def test_text_that_is_not_a_diff_still_hashes_to_itself_apart_from_trailing_blank_lines():
    text = "please fix the bug\nthanks"
    assert patch_hash(text + "\n\n") == patch_hash(text)
    assert patch_hash(text + "   \n") != patch_hash(text)
    assert patch_hash(text) != patch_hash("please fix the other bug\nthanks")


def test_normalise_keeps_the_lines_that_change_files():
    text = normalise(PATCH)
    assert "+LIMIT = 100\n" in text
    assert "-LIMIT = 10\n" in text
    assert '+        return open(path, encoding="utf-8").read()\n' in text
    assert "diff --git" not in text
    assert "index " not in text


# -- files ----------------------------------------------------------------------------------------------

def test_files_lists_modified_files_with_their_added_lines():
    assert files(PATCH) == [
        FileDiff("src/pkg/limits.py", Change.MODIFIED, ("LIMIT = 100", '        log.debug("clamped %s", value)')),
        FileDiff("src/pkg/reader.py", Change.MODIFIED, ('        return open(path, encoding="utf-8").read()',)),
    ]


def test_files_detects_an_added_file():
    (diff,) = files(NEW_FILE)
    assert diff.path == "src/pkg/util.py"
    assert diff.change is Change.ADDED
    assert diff.added_lines == ("def double(x):", "    return 2 * x", "")


def test_files_detects_a_deleted_file():
    (diff,) = files(DELETED_FILE)
    assert diff.path == "src/pkg/legacy.py"
    assert diff.change is Change.DELETED
    assert diff.added_lines == ()


def test_files_reads_every_file_of_a_mixed_patch_in_order():
    diffs = files(NEW_FILE + PATCH + DELETED_FILE)
    assert [(d.path, d.change) for d in diffs] == [
        ("src/pkg/util.py", Change.ADDED),
        ("src/pkg/limits.py", Change.MODIFIED),
        ("src/pkg/reader.py", Change.MODIFIED),
        ("src/pkg/legacy.py", Change.DELETED),
    ]


def test_files_reads_a_plain_unified_diff_without_git_headers():
    plain = "".join(line for line in PATCH.splitlines(keepends=True)
                    if not line.startswith(("diff --git", "index ")))
    assert [d.path for d in files(plain)] == ["src/pkg/limits.py", "src/pkg/reader.py"]


@pytest.mark.parametrize("text", [
    "this is not a diff\njust some words\n",
    "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: nope\n",
])
def test_files_rejects_text_that_is_not_a_diff(text):
    with pytest.raises(PatchParseError):
        files(text)


def test_files_rejects_a_hunk_whose_counts_do_not_match_its_lines():
    broken = PATCH.replace("@@ -5,3 +5,3 @@", "@@ -5,9 +5,9 @@")
    with pytest.raises(PatchParseError):
        files(broken)


def test_a_patch_parse_error_is_a_value_error():
    assert issubclass(PatchParseError, ValueError)


@pytest.mark.parametrize("empty", [None, "", " \n\t\n"])
def test_files_of_an_empty_or_missing_patch_is_empty(empty):
    assert is_empty(empty)
    assert files(empty) == []


def test_a_real_patch_is_not_empty():
    assert not is_empty(PATCH)
