"""Localisation from plain strings: issue terms, the grep command, file ranking, function spans."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from agent.localize import (MAX_FILE_BYTES, BlockKind, Span, Terms, blocks, candidate_files, code_spans, code_tokens,
                            def_line, function_text, functions, header, is_test_path, issue_terms, parse_ls_tree,
                            rank_by_content, rank_spans)
from agent.prompts import Templates
from agent.scaffolds.edit import chat_prompt, completion_prompt, decode, plan_edit
from harness.suite import materialize
from harness.tasks import load_tasks

ISSUE = """\
truncate() returns strings shorter than the requested width

When I call `truncate("The quick brown fox", 10)` I get `'The qui...'` back: the ellipsis is
counted in the width, though the docs of textkit.text say it is not.

```python
from textkit.text import truncate
print(truncate("The quick brown fox", 10))  # prints The qui...
```

Using textkit 0.1.0.
"""

def lines(source: str, span: Span) -> list[str]:
    return source.splitlines()[span.start:span.end]


# -- issue_terms ---------------------------------------------------------------------------------


def test_realistic_issue_names_the_function_and_module():
    terms = issue_terms(ISSUE)
    assert terms.identifiers[0] == "truncate"
    assert "textkit" in terms.identifiers and "text" in terms.identifiers
    assert "textkit/text.py" in terms.paths


def test_string_contents_comments_builtins_and_prose_are_not_identifiers():
    terms = issue_terms(ISSUE)
    for noise in ("The", "quick", "brown", "fox", "qui", "prints", "print", "from", "import",
                  "returns", "width", "docs", "Using"):
        assert noise not in terms.identifiers, noise


def test_versions_and_abbreviations_make_no_paths():
    terms = issue_terms("Seen with textkit 0.1.0, e.g. on Linux.")
    assert terms.paths == ()


def test_explicit_paths_in_prose_tracebacks_and_urls():
    text = """\
See textkit/text.py and util.py, also https://github.com/acme/textkit/blob/main/textkit/wrap.py#L3
and https://textkit.readthedocs.io/en/latest/api.html
```
  File "/usr/lib/python3.8/site-packages/textkit/report.py", line 9, in render
```
"""
    terms = issue_terms(text)
    # URLs and paths give no identifiers (``wrap``, ``readthedocs``) nor dotted-module guesses.
    assert terms == Terms(paths=("textkit/text.py", "util.py", "github.com/acme/textkit/blob/main/textkit/wrap.py",
                                 "usr/lib/python3.8/site-packages/textkit/report.py"),
                          identifiers=("render",),
                          locations=(("usr/lib/python3.8/site-packages/textkit/report.py", 9),))


def test_dotted_module_gives_every_prefix_as_candidate_path():
    terms = issue_terms("Calling textkit.text.truncate fails, but self.width and Foo.bar are fine.")
    assert terms.paths == ("textkit/text/truncate.py", "textkit/text.py")
    assert terms.identifiers[:3] == ("textkit", "text", "truncate")
    assert "width" in terms.identifiers


def test_prose_rules_calls_snake_camel_attributes():
    text = ("The wrap_lines helper and the TextWrapper class break; also wrapText and HTTPServer. "
            "render() fails after obj.layout() is called. The width (10) is wrong.")
    ids = issue_terms(text).identifiers
    assert ids == ("wrap_lines", "TextWrapper", "wrapText", "HTTPServer", "render", "layout")


def test_identifiers_are_deduplicated_in_order_of_first_mention():
    text = "`zeta_fn` then `alpha_fn`, and `zeta_fn` again; `for`, `len`, `ValueError`, `ab`."
    assert issue_terms(text).identifiers == ("zeta_fn", "alpha_fn")


def test_exception_messages_in_code_blocks_are_prose():
    text = "```\nTraceback (most recent call last):\n    shrink(box)\nValueError: width must be positive\n```"
    assert issue_terms(text).identifiers == ("shrink", "box")


# -- rank_by_content -----------------------------------------------------------------------------

CONTENTS = {
    "textkit/__init__.py": "from textkit.text import truncate\n",
    "textkit/report.py": "from textkit.text import truncate\n\ndef render(title, width):\n    return truncate(title, width)\n",
    "textkit/text.py": "def truncate(text, width):\n    return text[:width]\n",
    "textkit/other.py": "def pad(text):\n    return text\n",
}


def paths_of(ranked) -> list[str]:
    return [r.path for r in ranked]


def test_rank_prefers_the_defining_file_over_callers():
    # No issue text: identifiers alone order the files (BM25 has nothing to match).
    ranked = rank_by_content(Terms(paths=(), identifiers=("truncate",)), "", CONTENTS)
    assert paths_of(ranked) == ["textkit/text.py", "textkit/__init__.py", "textkit/report.py", "textkit/other.py"]


def test_rank_on_the_realistic_issue():
    assert paths_of(rank_by_content(issue_terms(ISSUE), ISSUE, CONTENTS, limit=1)) == ["textkit/text.py"]


def test_a_mentioned_path_beats_definitions_and_matches_by_suffix():
    terms = Terms(paths=("textkit/report.py",), identifiers=("truncate",))
    assert paths_of(rank_by_content(terms, "", CONTENTS))[:2] == ["textkit/report.py", "textkit/text.py"]
    # A traceback's absolute path names the tracked file it ends with, an installed copy the checkout's.
    for mentioned in ("usr/lib/site-packages/textkit/report.py", "venv/lib/python3.8/site-packages/report.py"):
        terms = Terms(paths=(mentioned,), identifiers=())
        assert paths_of(rank_by_content(terms, "", CONTENTS, limit=1)) == ["textkit/report.py"], mentioned
    installed = Terms(paths=("usr/lib/python3/site-packages/pkg/mod.py",), identifiers=())
    assert paths_of(rank_by_content(installed, "", {"src/pkg/mod.py": "", "src/pkg/a.py": ""}))[0] == "src/pkg/mod.py"


def test_identifiers_count_once_per_file_not_per_line():
    contents = {"a.py": "x = shrink(y)\nshrink(y)\nshrink(y)\n", "b.py": "shrink(grow(y))\n"}
    assert paths_of(rank_by_content(Terms(paths=(), identifiers=("shrink", "grow")), "", contents)) == ["b.py", "a.py"]


def test_module_level_assignment_defines_but_local_one_does_not():
    contents = {"a.py": "def f():\n    LIMIT = 3\n", "b.py": "LIMIT = 10\n"}
    assert paths_of(rank_by_content(Terms(paths=(), identifiers=("LIMIT",)), "", contents)) == ["b.py", "a.py"]


def test_test_paths():
    for path in ("tests/test_text.py", "pkg/testing/util.py", "pkg/test/x.py", "test_a.py",
                 "pkg/a_test.py", "conftest.py", "app/tests.py"):
        assert is_test_path(path), path
    for path in ("textkit/text.py", "pkg/contest.py", "latest/x.py", "pkg/testutils.py"):
        assert not is_test_path(path), path


# -- functions -----------------------------------------------------------------------------------

SOURCE = '''\
import functools


@functools.lru_cache()
def truncate(text, width):
    """Cut text.

Column-0 docstring text stays inside."""
    if len(text) <= width:
        return text

    return text[:width - 3] + "..."


class Box:
    size = 1

    def area(self,
             scale=1):
        def inner(x):
            return x * x
        return inner(self.size) * scale

    async def load(
        self,
    ):
        await self.fetch()
# a comment at column 0 inside the body
        return 1

    def tiny(self): return 2


def after(): pass
'''


def test_functions_finds_every_def_in_order():
    spans = functions(SOURCE)
    assert [s.name for s in spans] == ["truncate", "area", "inner", "load", "tiny", "after"]
    assert [s.indent for s in spans] == ["", "    ", "        ", "    ", "    ", ""]


def test_span_starts_at_def_not_decorator_and_skips_trailing_blanks():
    span = functions(SOURCE)[0]
    assert def_line(SOURCE, span) == "def truncate(text, width):\n"
    assert lines(SOURCE, span)[-1] == '    return text[:width - 3] + "..."'
    assert "Column-0 docstring text stays inside.\"\"\"" in lines(SOURCE, span)


def test_method_with_multiline_signature_and_nested_function():
    spans = {s.name: s for s in functions(SOURCE)}
    area = lines(SOURCE, spans["area"])
    assert area[0] == "    def area(self," and area[-1] == "        return inner(self.size) * scale"
    assert lines(SOURCE, spans["inner"]) == ["        def inner(x):", "            return x * x"]
    assert header(SOURCE, spans["area"]) == "    def area(self,\n             scale=1):\n"


def test_signature_closing_at_def_indentation_and_column_0_comment_in_body():
    load = lines(SOURCE, {s.name: s for s in functions(SOURCE)}["load"])
    assert load[0] == "    async def load("
    assert load[-1] == "        return 1"


def test_same_line_bodies():
    spans = {s.name: s for s in functions(SOURCE)}
    assert lines(SOURCE, spans["tiny"]) == ["    def tiny(self): return 2"]
    assert function_text(SOURCE, spans["after"]) == "def after(): pass\n"
    assert [(s.start, s.end) for s in functions('def f(): """doc"""\n    \nx = 1\n')] == [(0, 1)]
    assert [(s.start, s.end) for s in functions("def f(): return 1\n        # stray\n")] == [(0, 1)]


def test_def_inside_a_string_is_not_a_function():
    source = 'HELP = """\ndef fake():\n    pass\n"""\n\ndef real():\n    return HELP\n'
    assert [s.name for s in functions(source)] == ["real"]


def test_function_at_end_of_file_without_newline_and_comment_before_next_def():
    source = "def a():\n    return 1\n\n# helpers\ndef b():\n    return 2"
    a, b = functions(source)
    assert (a.start, a.end) == (0, 2)
    assert (b.start, b.end) == (4, 6)


def test_py2_code_without_ast():
    source = "def show(x):\n    print x\n    exec 'y = 1'\n\ndef other():\n\tpass\n"
    spans = functions(source)
    assert [(s.name, s.start, s.end) for s in spans] == [("show", 0, 3), ("other", 4, 6)]


# -- rank_spans ----------------------------------------------------------------------------------


def test_the_method_of_a_mentioned_class_beats_a_same_named_one():
    source = ("class Writer:\n    def read(self):\n        return 0\n\n"
              "class Reader:\n    def read(self):\n        return 1\n")
    issue = "`Reader.read` returns 1"
    best = rank_spans(issue_terms(issue), issue, {"io.py": source})[0]
    assert (best.span.name, best.span.start) == ("read", 5)


def test_spans_follow_the_file_bonus_when_nothing_else_differs():
    sources = {"a.py": "def truncate(t):\n    return t\n", "b.py": "def truncate(t):\n    return t\n"}
    terms = Terms(paths=(), identifiers=("truncate",))
    assert rank_spans(terms, "", sources)[0].path == "a.py"  # ties go by file order
    assert rank_spans(terms, "", sources, file_bonus={"b.py": 3.0})[0].path == "b.py"


# -- repository scale: frames, blocks, BM25 ranking ----------------------------------------------


def test_stack_trace_frames_in_both_forms_in_order():
    text = ('Traceback (most recent call last):\n  File "src/pkg/core.py", line 41, in run\n'
            "    go()\nsrc/pkg/util.py:7: in helper\nFAILED tests/test_x.py::test_y\n")
    assert issue_terms(text).locations == (("src/pkg/core.py", 41), ("src/pkg/util.py", 7))


MODULE = '''\
"""Logging plugin."""
import logging
import re
from pathlib import Path

DEFAULT_LOG_FORMAT = "%(filename)-25s %(lineno)4d %(levelname)-8s %(message)s"
DEFAULT_LOG_DATE_FORMAT = "%H:%M:%S"
_ANSI = re.compile(
    r"\\x1b\\[[0-9;]*m"
)

try:
    import colorama
except ImportError:
    colorama = None
else:
    colorama.init()


@decorated
def get_option(config, name):
    return config.getini(name)


class Handler(logging.Handler):
    level = 0

    def emit(self, record):
        self.name = record.name
        return record
'''


def test_blocks_are_top_level_statements_of_every_kind():
    got = [(s.kind, s.name, s.start, s.end) for s in blocks(MODULE)]
    assert got == [
        (BlockKind.STATEMENT, "statement", 0, 1),  # the docstring
        (BlockKind.IMPORTS, "imports", 1, 4),
        (BlockKind.ASSIGNMENT, "DEFAULT_LOG_FORMAT", 5, 6),
        (BlockKind.ASSIGNMENT, "DEFAULT_LOG_DATE_FORMAT", 6, 7),
        (BlockKind.ASSIGNMENT, "_ANSI", 7, 10),  # a statement continued over brackets
        (BlockKind.STATEMENT, "try", 11, 17),  # try, except and else in one block
        (BlockKind.FUNCTION, "get_option", 20, 22),  # the decorator stays outside
        (BlockKind.CLASS, "Handler", 24, 30),
    ]
    assert [s.name for s in code_spans(MODULE)][-1] == "emit"  # methods are spans too
    assert BlockKind.CLASS.compound and not BlockKind.ASSIGNMENT.compound


def test_code_tokens_split_identifiers_and_drop_stop_words():
    assert code_tokens("DEFAULT_LOG_FORMAT is in the getOptions() of blueprints") == [
        "default_log_format", "default", "log", "format", "getoption", "get", "option", "blueprint"]


def test_a_constant_named_by_the_issue_is_the_best_block_not_a_function_using_a_common_word():
    issue = ('Improve default logging format\nCurrently it is:\n\n> DEFAULT_LOG_FORMAT = "%(filename)-25s"\n\n'
             "I think `name` (module name) would be very useful here.\n")
    terms = issue_terms(issue)
    best = rank_spans(terms, issue, {"src/logging.py": MODULE})[0]
    assert (best.span.kind, best.span.name) == (BlockKind.ASSIGNMENT, "DEFAULT_LOG_FORMAT")


def test_a_stack_trace_frame_picks_the_file_and_the_block_holding_the_line():
    issue = 'It crashes:\n  File "/site-packages/pkg/log.py", line 29, in emit\nAttributeError\n'
    contents = {"pkg/log.py": MODULE, "pkg/other.py": "def emit():\n    pass\n"}
    terms = issue_terms(issue)
    assert rank_by_content(terms, issue, contents)[0].path == "pkg/log.py"
    best = rank_spans(terms, issue, {"pkg/log.py": MODULE})[0]
    assert best.span.name == "emit"


def test_an_issue_naming_no_identifier_still_ranks_every_file_by_its_words():
    # pallets__flask-4045 in miniature: plain prose, no code, no path; the old ranking found nothing.
    issue = ("Raise error when blueprint name contains a dot\nThis is required since every dot is now "
             "significant since blueprints can be nested.")
    contents = {
        "src/app/blueprints.py": "class Blueprint:\n    def __init__(self, name):\n        self.name = name\n",
        "src/app/config.py": "class Config(dict):\n    def from_file(self, path):\n        return path\n",
        "src/app/json.py": "def dumps(obj):\n    return repr(obj)\n",
    }
    terms = issue_terms(issue)
    assert terms.identifiers == () and terms.paths == ()
    ranked = rank_by_content(terms, issue, contents, limit=5)
    assert [r.path for r in ranked][0] == "src/app/blueprints.py"
    assert len(ranked) == 3  # every file is ranked, matching or not: there is always a candidate
    assert rank_by_content(terms, "", {"a.py": "x = 1\n"})[0].path == "a.py"


def test_a_path_with_a_folder_outweighs_a_bare_file_name_and_definitions_outweigh_uses():
    contents = {"pkg/utils.py": "def helper():\n    pass\n", "pkg/core.py": "def run():\n    helper()\n",
                "pkg/api.py": "x = 1\n"}
    ranked = rank_by_content(issue_terms("In pkg/api.py and utils.py, `helper()` fails."), "", contents)
    assert [r.path for r in ranked] == ["pkg/api.py", "pkg/utils.py", "pkg/core.py"]


def test_candidates_from_a_real_git_tree(tmp_path):
    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True, check=True).stdout

    git("init", "-q")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "tool.py").write_text("#!/usr/bin/env python\n")
    (tmp_path / "pkg" / "tool.py").chmod(0o755)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_mod.py").write_text("def test(): pass\n")
    (tmp_path / "big.py").write_text("#" * (MAX_FILE_BYTES + 1))
    (tmp_path / "link.py").symlink_to("pkg/mod.py")
    (tmp_path / "odd name.py").write_text("y = 2\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    tree = parse_ls_tree(git("ls-tree", "-r", "-l", "-z", "--full-tree", "HEAD"))
    assert {(p, m) for p, _, m in tree} == {("big.py", "100644"), ("odd name.py", "100644"),
                                           ("pkg/mod.py", "100644"), ("pkg/tool.py", "100755"),
                                           ("tests/test_mod.py", "100644")}  # the symlink is not text
    assert sorted(candidate_files([(p, s) for p, s, _ in tree])) == ["odd name.py", "pkg/mod.py", "pkg/tool.py"]
    assert candidate_files([("tests/test_a.py", 10), ("README", 5)]) == ["tests/test_a.py"]


# -- the edit scaffold's prompts on the bundled suite (no container, no model) --------------------


def _tree_at(repo: Path, commit: str) -> dict[str, str]:
    def git(*args, data=None):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True, input=data).stdout

    listing = git("ls-tree", "-r", "-l", "-z", "--full-tree", commit).decode()
    paths = candidate_files([(p, s) for p, s, _ in parse_ls_tree(listing)])
    return {p: decode(git("show", f"{commit}:{p}")) for p in paths}


def test_the_prompts_of_every_bundled_task_show_a_file_its_gold_patch_edits():
    templates = Templates.load("edit")
    for task in load_tasks(None).tasks:
        corpus = _tree_at(materialize(task.repo), task.base_commit)
        gold = set(re.findall(r"^diff --git a/(\S+) b/", task.patch, re.M))
        plan = plan_edit(task.problem_statement, corpus)
        assert plan.ranked[0].path in gold, task.instance_id
        assert plan.target is not None and plan.target.path in gold, task.instance_id
        completion = completion_prompt(templates, task.problem_statement, plan)
        assert f"# File: {plan.target.path}\n" in completion
        # The prompt ends where the model starts writing: after the block's first line for a function.
        first = corpus[plan.target.path].splitlines()[plan.target.span.start]
        assert completion.endswith("# Fixed version:\n" + (first + "\n" if plan.target.span.kind.compound else ""))
        chat = chat_prompt(templates, task.problem_statement, plan)
        assert plan.ranked[0].path in chat and task.problem_statement.strip() in chat


def test_a_small_prompt_budget_shows_the_best_blocks_with_elisions():
    source = "import os\n\n\n" + "".join(f"def filler_{i}():\n    return {i}\n\n\n" for i in range(200)) + (
        "def parse_config(path):\n    return os.path.join(path, 'x')\n")
    issue = "parse_config() ignores the path it is given"
    plan = plan_edit(issue, {"pkg/config.py": source}, prompt_chars=300)
    shown = plan.shown["pkg/config.py"]
    assert "def parse_config(path):\n    return os.path.join(path, 'x')\n" in shown
    assert len(shown) < 400 and "...\n" in shown and "filler_150" not in shown
    assert plan.target.span.name == "parse_config"
    whole = plan_edit(issue, {"pkg/config.py": source})
    assert whole.shown["pkg/config.py"] == source  # fits the default budget: the whole file


def test_a_name_few_files_use_counts_more_than_one_every_file_uses():
    contents = {f"m{i}.py": "import pytest\n" for i in range(8)}
    contents["m0.py"] = "LIMIT = 1\n"  # defines a name only it has
    contents["m1.py"] = "pytest = None\nshrink()\n"  # defines the name all the others use, uses a rare one
    contents["m2.py"] = "import pytest\nshrink()\n"
    # Counted flat, m1 would win (a definition and a use against one definition).
    ranked = rank_by_content(Terms(paths=(), identifiers=("pytest", "LIMIT", "shrink")), "", contents)
    assert paths_of(ranked)[:3] == ["m0.py", "m1.py", "m2.py"]
