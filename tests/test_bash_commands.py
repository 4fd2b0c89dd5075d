"""Which part of a reply the ``bash`` scaffold runs: only the one fenced block labelled ``bash`` or
``sh``, fences read line by line as CommonMark reads them. The last test drives a real attempt (scripted
OpenAI-compatible server on loopback, a bundled task's container) with a reply that mixes languages."""

from __future__ import annotations

import pytest

from agent.attempt import AttemptLimits, ExitReason, run_attempt
from agent.model import Model, ModelConfig
from agent.prompts import Templates
from agent.scaffolds import BashScaffold
from agent.scaffolds.bash import shell_blocks
from harness.containers import ContainerRuntime
from harness.image_names import image_name
from harness.scores.prices import TokenPrice
from tests.scripted_server import ScriptedServer, bash, last_user_text, turn

# The bug this guards against: the old pattern matched from the python block's closing fence, so
# the prose between the two blocks ran as a shell command.
MIXED = ("Let me look at the helper first.\n\n"
         "```python\nprint('hello')\n```\n"
         "touch /tmp/prose-ran && echo PROSE-RAN\n\n"
         "```bash\necho BASH-RAN\n```\n")


def test_a_python_block_then_a_bash_block_gives_only_the_bash_command():
    assert shell_blocks(MIXED) == ["echo BASH-RAN"]


def test_sh_and_bash_count_in_any_case_and_the_info_strings_first_word_is_the_language():
    assert shell_blocks("```sh\nls -la\n```") == ["ls -la"]
    assert shell_blocks("```Bash\nls\n```") == ["ls"]
    assert shell_blocks('```bash title="x" {.numberLines}\ngrep -n foo a.py\n```') == ["grep -n foo a.py"]
    assert shell_blocks("``` bash\nls\n```") == ["ls"]  # spaces before the info string


def test_blocks_of_other_languages_and_unlabelled_blocks_are_no_commands():
    for label in ("", "python", "diff", "text", "shell-session", "bash-output", "console"):
        assert shell_blocks(f"```{label}\nrm -rf src\n```") == [], label


def test_a_bash_example_nested_in_a_longer_fence_is_content_not_a_command():
    reply = ("Write the README like this:\n\n````markdown\n# Usage\n\n```bash\nmake install\n```\n````\n\n"
             "Then:\n\n```bash\ncat README.md\n```\n")
    assert shell_blocks(reply) == ["cat README.md"]
    # A fence closes only at its own character: ``` inside ~~~ is content.
    assert shell_blocks("~~~text\n```bash\nrm -rf /\n```\n~~~\n") == []
    # An info string on a would-be closing line makes it content, not a close.
    assert shell_blocks("```python\nx = 1\n```bash\necho inside\n```\n") == []


def test_tilde_fences_and_longer_closing_fences():
    assert shell_blocks("~~~bash\necho tilde\n~~~\n") == ["echo tilde"]
    assert shell_blocks("```bash\necho longer close\n`````\n") == ["echo longer close"]
    # A shorter line of backticks does not close a four-backtick fence.
    assert shell_blocks("````bash\necho a\n```\necho b\n````\n") == ["echo a\n```\necho b"]


def test_a_bash_block_inside_a_quoted_example_is_no_command():
    reply = "The issue says:\n\n> Run this:\n> ```bash\n> rm -rf build\n> ```\n\nSo I check:\n\n```bash\nls build\n```\n"
    assert shell_blocks(reply) == ["ls build"]
    assert shell_blocks("> ```bash\n> make\n> ```\n") == []
    # Inside an open block a line starting with '>' is just the command's text.
    assert shell_blocks("```bash\ncat a \\\n> b\n```") == ["cat a \\\n> b"]


def test_two_bash_blocks_are_both_found_so_the_reply_is_a_format_error():
    assert shell_blocks("```bash\nls\n```\nand\n```sh\npwd\n```\n") == ["ls", "pwd"]
    assert BashScaffold._command(_Reply("```bash\nls\n```\n```bash\npwd\n```")) == (None, None)
    assert BashScaffold._command(_Reply(MIXED)) == ("echo BASH-RAN", None)
    assert BashScaffold._command(_Reply("```python\nprint(1)\n```")) == (None, None)


def test_an_unclosed_fence_is_no_command_and_hides_what_follows():
    assert shell_blocks("```bash\nrm -rf src && echo cut off here") == []
    assert shell_blocks("```python\nx = 1\n\n```bash\nls\n") == []


def test_fences_indented_up_to_three_spaces_lose_that_indentation_and_four_spaces_are_no_fence():
    assert shell_blocks("1. First:\n   ```bash\n   cd src &&\n     ls\n   ```\n") == ["cd src &&\n  ls"]
    assert shell_blocks("    ```bash\n    ls\n    ```\n") == []


def test_inline_triple_backticks_are_no_fence():
    assert shell_blocks("Run ```ls``` now.\n```bash\npwd\n```") == ["pwd"]


def test_an_empty_bash_block_is_a_block_but_no_command():
    assert shell_blocks("```bash\n```") == [""]
    assert BashScaffold._command(_Reply("```bash\n\n```")) == (None, None)


class _Reply:
    """The fields of a model reply that ``BashScaffold._command`` reads."""

    def __init__(self, text: str):
        self.text, self.tool_calls = text, []


@pytest.mark.docker
def test_an_attempt_runs_only_the_bash_block_of_a_reply_that_mixes_languages(docker_client, bundled_tasks,
                                                                           built_suite):
    task = next(t for t in bundled_tasks if t.instance_id == "monkeys-suite__textkit-3")
    steps = [MIXED, bash("ls /tmp; echo STATUS-$?"), bash("submit")]
    with ScriptedServer(lambda body: steps[turn(body)]) as server:
        model = Model(ModelConfig("scripted", base_url=server.base_url, backoff_initial=0.01, max_tokens=256))
        result = run_attempt(runtime=ContainerRuntime(docker_client, "test-bash-commands"), image=image_name(task),
                             task=task, index=0, seed=7, model=model, scaffold=BashScaffold(),
                             templates=Templates.load("bash"), limits=AttemptLimits(), share=1.0,
                             price=TokenPrice(input=1.0, output=2.0, source="test"))
        observations = [last_user_text(r) for r in server.requests[1:]]
    assert result.exit_reason is ExitReason.SUBMITTED, result.error
    assert "BASH-RAN" in observations[0] and "PROSE-RAN" not in observations[0]
    assert "STATUS-0" in observations[1] and "prose-ran" not in observations[1]
    commands = [m["command"] for m in result.trajectory if "command" in m]
    assert commands == ["echo BASH-RAN", "ls /tmp; echo STATUS-$?"]
