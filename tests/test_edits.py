"""Edits from plain strings: SEARCH/REPLACE blocks, base-model completions, rewritten functions."""

from __future__ import annotations

import os
import subprocess

import pytest

from agent.edits import (Edit, EditError, apply_edit, completed_function, completed_statements, fenced_code,
                         parse_search_replace, replace_span, rewritten_function)
from agent.localize import BlockKind, blocks, functions
from agent.scaffolds.edit import (corpus_command, decode, encode, parse_corpus, parse_read, read_command,
                                  write_command)

SOURCE = """\
def truncate(text, width):
    if len(text) <= width:
        return text
    return text[:width - 3] + "..."


class Box:
    def area(self):
        if self.size:
            return self.size * self.size
        return 0
"""


# -- parse_search_replace ------------------------------------------------------------------------


def test_parse_one_block_in_a_fence():
    answer = """\
Here is the fix.

```python
textkit/text.py
<<<<<<< SEARCH
    return text[:width - 3] + "..."
=======
    return text[:width] + "..."
>>>>>>> REPLACE
```
"""
    assert parse_search_replace(answer) == [
        Edit("textkit/text.py", '    return text[:width - 3] + "..."\n', '    return text[:width] + "..."\n')]


def test_parse_path_decorations_marker_lengths_and_missing_final_newline():
    answer = ("File: `a.py`\n<<<<< SEARCH\nx = 1\n=========\nx = 2\n>>>>>>>>> REPLACE\n\n"
              "# b.py\n```\n<<<<<<< SEARCH\ny = 1\n=======\ny = 2\n>>>>>>> REPLACE")
    assert parse_search_replace(answer) == [Edit("a.py", "x = 1\n", "x = 2\n"), Edit("b.py", "y = 1\n", "y = 2\n")]


def test_parse_block_without_its_own_path_reuses_the_previous_one_and_prose_is_no_path():
    answer = ("a.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n"
              "<<<<<<< SEARCH\nz = 1\n=======\n>>>>>>> REPLACE\n"
              "Now the other change:\n<<<<<<< SEARCH\nq\n=======\nr\n>>>>>>> REPLACE\n")
    assert parse_search_replace(answer) == [Edit("a.py", "x = 1\n", "x = 2\n"), Edit("a.py", "z = 1\n", ""),
                                            Edit(None, "q\n", "r\n")]


def test_parse_ends_at_a_closing_fence_and_drops_a_truncated_block():
    answer = "a.py\n```\n<<<<<<< SEARCH\nx\n=======\ny\n```\nb.py\n<<<<<<< SEARCH\nu\n=======\nv\n"
    assert parse_search_replace(answer) == [Edit("a.py", "x\n", "y\n")]
    assert parse_search_replace("no blocks here") == []


# -- apply_edit ----------------------------------------------------------------------------------


def test_apply_exact():
    out = apply_edit(SOURCE, '    return text[:width - 3] + "..."\n', '    return text[:width] + "..."\n')
    assert '    return text[:width] + "..."\n' in out and "width - 3" not in out
    assert out.count("\n") == SOURCE.count("\n")


def test_apply_matches_whole_lines_not_substrings():
    with pytest.raises(EditError, match="not found"):
        apply_edit("value = 10\n", "alue = 1", "alue = 2")


def test_apply_ignores_trailing_whitespace():
    source = "a = 1   \nb = 2\n"
    assert apply_edit(source, "a = 1\nb = 2", "a = 3\nb = 4\n") == "a = 3\nb = 4\n"


def test_apply_prefers_a_trailing_whitespace_match_to_an_indentation_shifted_one():
    source = "x = 1   \nif y:\n    x = 1\n"
    assert apply_edit(source, "x = 1\n", "x = 2\n") == "x = 2\nif y:\n    x = 1\n"


def test_apply_reindents_a_search_written_at_another_indentation():
    search = "if self.size:\n    return self.size * self.size\n"
    replace = "if self.size is not None:\n    return self.size ** 2\n\nreturn 0\n"
    out = apply_edit(SOURCE, search, replace)
    assert ("        if self.size is not None:\n            return self.size ** 2\n\n        return 0\n"
            "        return 0\n") in out


def test_apply_reindents_to_a_shallower_place_without_eating_code():
    source = "def f():\n    return 1\n"
    out = apply_edit(source, "        def f():\n            return 1\n", "        def f():\n      return 2\n")
    assert out == "def f():\nreturn 2\n"


def test_apply_reports_ambiguous_and_missing_with_file_and_first_line():
    with pytest.raises(EditError, match=r"m.py: search text matches 2 places: 'x = 1'"):
        apply_edit("x = 1\ny\nx = 1\n", "x = 1\n", "x = 2\n", path="m.py")
    with pytest.raises(EditError, match=r"search text not found: 'nothing here'"):
        apply_edit(SOURCE, "\nnothing here\n", "x")


def test_apply_empty_search():
    assert apply_edit("", "", "new file\n") == "new file\n"
    with pytest.raises(EditError):
        apply_edit("x = 1\n", "", "y\n")


def test_apply_keeps_the_final_newline_state():
    assert apply_edit("a\nb", "b", "c\n") == "a\nc"
    assert apply_edit("a\nb\n", "a", "z") == "z\nb\n"


# -- fenced_code ---------------------------------------------------------------------------------


def test_fenced_code_any_tag_and_unclosed():
    text = "x\n```python\na = 1\n```\ntext\n```\nb = 2\n```\n``` py\nc = 3\n"
    assert fenced_code(text) == ["a = 1\n", "b = 2\n", "c = 3\n"]
    assert fenced_code("no code") == []


# -- completed_function --------------------------------------------------------------------------


def test_completion_is_cut_where_the_body_dedents():
    completion = ("        if len(text) <= width:\n            return text\n\n        return text[:width]\n\n"
                  "    def next_method(self):\n        pass\n")
    assert completed_function("    def truncate(self, text, width):\n", completion) == (
        "    def truncate(self, text, width):\n        if len(text) <= width:\n            return text\n\n"
        "        return text[:width]\n")


def test_completion_is_cut_at_markers_and_fences():
    assert completed_function("def f(x):\n", "    return x\n# Buggy version:\n") == "def f(x):\n    return x\n"
    assert completed_function("def f(x):\n", "    return x\n    ```\nmore") == "def f(x):\n    return x\n"
    assert completed_function("def f(x):\n", "    return x\n  Fixed version:\n    y") == "def f(x):\n    return x\n"


def test_completion_keeps_strings_and_brackets_that_reach_column_0():
    completion = '    """Doc.\n\nMore."""\n    return g(1,\n2)\nprint(f(1))\n'
    assert completed_function("def f(x):", "\n" + completion) == "def f(x):\n" + completion[:-len("print(f(1))\n")]


def test_completion_may_finish_the_signature_and_gets_a_final_newline():
    assert completed_function("def f(\n", "    a,\n):\n    return a") == "def f(\n    a,\n):\n    return a\n"


def test_empty_completion_is_an_error():
    for completion in ("", "\n\n", "def g():\n    pass\n", "\n```\n"):
        with pytest.raises(EditError, match="no function body"):
            completed_function("def f(x):\n", completion)


def test_def_line_with_its_own_body_is_complete():
    assert completed_function("def f(): return 1\n", "    junk\n") == "def f(): return 1\n"


# -- rewritten_function --------------------------------------------------------------------------


def test_rewritten_function_takes_the_last_fenced_definition():
    answer = ("The bug is here:\n```python\ndef truncate(text, width):\n    return text[:width - 3]\n```\n"
              "Fixed:\n```python\nimport x\n\ndef truncate(text, width):\n    return text[:width]\n\nprint(1)\n```\n")
    assert rewritten_function(answer, "truncate") == "def truncate(text, width):\n    return text[:width]\n"


def test_rewritten_function_from_raw_text_method_or_missing():
    answer = "class Box:\n    def area(self):\n        return 1"
    assert rewritten_function(answer, "area") == "    def area(self):\n        return 1\n"
    assert rewritten_function(answer, "volume") is None
    assert rewritten_function("```\ndef other():\n    pass\n```\ndef area(self):\n    pass\n", "area") is None


# -- replace_span --------------------------------------------------------------------------------


def test_replace_span_reindents_to_the_method():
    span = {s.name: s for s in functions(SOURCE)}["area"]
    out = replace_span(SOURCE, span, "def area(self):\n    return (self.size or 0) ** 2\n")
    assert out.endswith("class Box:\n    def area(self):\n        return (self.size or 0) ** 2\n")
    assert out.startswith(SOURCE[:SOURCE.index("class Box")])


def test_replace_span_shifts_left_and_keeps_the_rest():
    span = functions(SOURCE)[0]
    new = "        def truncate(text, width):\n            return text[:width]\n\n            # done"
    out = replace_span(SOURCE, span, new)
    assert out.startswith("def truncate(text, width):\n    return text[:width]\n\n    # done\n\n\nclass Box:")


def test_replace_span_keeps_a_missing_final_newline():
    source = "x = 1\n\ndef f():\n    return 1"
    [span] = functions(source)
    assert replace_span(source, span, "def f():\n    return 2\n") == "x = 1\n\ndef f():\n    return 2"


def test_completion_then_replace_round_trip():
    span = {s.name: s for s in functions(SOURCE)}["area"]
    fixed = completed_function("    def area(self):\n", "        return self.size ** 2\n\n    def other(self):\n")
    out = replace_span(SOURCE, span, fixed)
    assert out == SOURCE[:SOURCE.index("    def area")] + "    def area(self):\n        return self.size ** 2\n"


# -- files keep their bytes, line endings and mode -----------------------------------------------


CRLF = "import os\r\n\r\nLIMIT = 10\r\n\r\ndef f(x):\r\n    return x + 1\r\n"


def test_crlf_stays_crlf_through_search_replace_and_span_replacement():
    edited = apply_edit(CRLF, "    return x + 1\n", "    y = x + 2\n    return y\n")
    assert edited == "import os\r\n\r\nLIMIT = 10\r\n\r\ndef f(x):\r\n    y = x + 2\r\n    return y\r\n"
    span = [b for b in blocks(CRLF) if b.name == "LIMIT"][0]
    assert replace_span(CRLF, span, "LIMIT = 20\n") == CRLF.replace("LIMIT = 10", "LIMIT = 20")
    unterminated = CRLF.rstrip("\r\n")
    span = functions(unterminated)[0]
    assert replace_span(unterminated, span, "def f(x):\n    return 2\n").endswith("def f(x):\r\n    return 2")


def test_completed_statements_stop_at_the_first_blank_line_or_marker():
    assert completed_statements('DEFAULT = "%(name)s"\nOTHER = 1\n\n\ndef f():\n') == 'DEFAULT = "%(name)s"\nOTHER = 1\n'
    assert completed_statements('X = (\n\n    1)\n# Buggy version:\nY = 2') == "X = (\n\n    1)\n"  # brackets span the blank
    assert completed_statements("\nX = 1") == "X = 1\n"
    with pytest.raises(EditError):
        completed_statements("\n\n```\n")


def _bash(command: str, cwd) -> str:
    done = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, check=True)
    return done.stdout.decode("utf-8", "replace")  # as the shell session decodes a command's output


def test_a_file_with_non_utf8_bytes_crlf_and_an_executable_bit_is_written_back_byte_for_byte(tmp_path):
    original = b"#!/usr/bin/env python\r\n# caf\xe9 \xff\r\nLIMIT = 10\r\nNAME = '\xc3\xa9'\r\n"
    script = tmp_path / "tool 1.py"
    script.write_bytes(original)
    script.chmod(0o755)
    text = parse_read(_bash(read_command("tool 1.py"), tmp_path))
    assert encode(text) == original
    span = [b for b in blocks(text) if b.name == "LIMIT"][0]
    assert span.kind is BlockKind.ASSIGNMENT
    _bash(write_command("tool 1.py", replace_span(text, span, "LIMIT = 20\n")), tmp_path)
    assert script.read_bytes() == original.replace(b"LIMIT = 10", b"LIMIT = 20")
    assert os.stat(script).st_mode & 0o777 == 0o755


def test_the_corpus_command_prints_every_file_under_its_path(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n\ny = 2\n")
    (tmp_path / "pkg" / "it's b.py").write_text("def b():\n    return 'b'")  # no final newline
    (tmp_path / "empty.py").write_text("")
    (tmp_path / "latin.py").write_bytes(b"s = '\xe9'\n")
    paths = ["pkg/a.py", "pkg/it's b.py", "empty.py", "latin.py"]
    corpus = parse_corpus(_bash(corpus_command(paths), tmp_path))
    assert corpus == {"pkg/a.py": "x = 1\n\ny = 2\n", "pkg/it's b.py": "def b():\n    return 'b'\n",
                      "latin.py": "s = '\ufffd'\n"}  # an empty file has nothing to rank; lossy is fine here
    assert decode(encode("caf\udce9")) == "caf\udce9"
