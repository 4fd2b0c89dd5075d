"""The ``bash`` scaffold: a multi-turn loop in which the model runs one shell command per turn in the
attempt's container and reads its output, until it submits or a limit ends the attempt.

A command comes as the one fenced block labelled ``bash`` or ``sh`` of a reply (see ``shell_blocks``),
or as a ``bash`` tool call when the scaffold is configured for tools and the server supports them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from agent.attempt import AttemptOver, Context, ExitReason
from agent.context import fit_for_call
from agent.session import REPO_DIR, CommandEnd

SHELL_LANGUAGES = frozenset({"bash", "sh"})
"""The info-string languages whose fenced blocks are commands; every other block (python, diff,
unlabelled) is prose the model wrote, never run."""
SUBMIT = "submit"

BASH_TOOL = {
    "type": "function",
    "function": {
        "name": "bash",
        "description": "Run one shell command in the repository and return its output.",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
    },
}


# An opening fence (CommonMark 4.5): up to 3 spaces, then 3 or more backticks or tildes, then the
# info string; a backtick fence's info string may not contain a backtick (that line is inline code).
_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_QUOTED = re.compile(r"^ {0,3}>")


def shell_blocks(text: str) -> list[str]:
    """The contents of the fenced blocks of ``text`` labelled ``bash`` or ``sh``, stripped, in order.

    Fences are read line by line as CommonMark reads them, so a block of another language is skipped
    whole: the prose between a ```python block and a ```bash block is never taken for a command, and a
    ```bash example nested in a longer ````markdown fence is content, not a command. A block closes at
    a line of the same fence character, at least as long, and nothing else; an unclosed block (a reply
    cut off mid-command) is no command. A fence on a quoted line (``>``) is an example, not a command.
    The language is the info string's first word (```bash title="x"``` is bash), in any case.
    """
    found: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        opening = _OPEN.match(line)
        if opening is None or _QUOTED.match(line):
            continue
        fence, info = opening["fence"], opening["info"].strip()
        if fence[0] == "`" and "`" in info:
            continue  # inline code such as ```ls```, not a fence
        indent = len(opening["indent"])
        body: list[str] = []
        closed = False
        while i < len(lines):
            inner = lines[i]
            i += 1
            stripped = inner.lstrip(" ")
            if (len(inner) - len(stripped) <= 3 and stripped.startswith(fence)
                    and stripped.rstrip(" \t") == fence[0] * len(stripped.rstrip(" \t"))):
                closed = True
                break
            # Content lines lose up to the opening fence's indentation (CommonMark 4.5).
            body.append(inner[min(indent, len(inner) - len(inner.lstrip(" "))):])
        language = info.split(maxsplit=1)[0].lower() if info else ""
        if closed and language in SHELL_LANGUAGES:
            found.append("\n".join(body).strip())
    return found


@dataclass
class BashScaffold:
    name: str = "bash"
    tools: bool = False
    """Offer a ``bash`` tool instead of asking for fenced blocks (servers with tool calling)."""

    def run(self, ctx: Context) -> ExitReason:
        values = {"repo_dir": REPO_DIR, "command_timeout": int(ctx.limits.command_timeout),
                  "problem_statement": ctx.task.problem_statement}
        messages = [{"role": "system", "content": ctx.templates.render("system", **values)},
                    {"role": "user", "content": ctx.templates.render("instance", **values)}]
        for m in messages:
            ctx.log(m["role"], m["content"])
        bad_in_a_row = 0
        while True:
            if ctx.meter.steps_left() <= 0:
                raise AttemptOver(ExitReason.STEP_LIMIT, f"{ctx.limits.steps} steps")
            sent = fit_for_call(ctx, messages)  # older outputs shortened to fit the context window
            reply = ctx.model.chat(sent, seed=ctx.seed + ctx.meter.calls, tools=[BASH_TOOL] if self.tools else None)
            ctx.log("assistant", reply.text, tokens=reply.usage.total,
                    **({"tool_calls": [c.arguments for c in reply.tool_calls]} if reply.tool_calls else {}))
            ctx.meter.add(reply)  # may end the attempt (tokens, dollars, time)
            command, call_id = self._command(reply)
            if reply.tool_calls:
                messages.append({"role": "assistant", "content": reply.text or None, "tool_calls": [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for c in reply.tool_calls]})
            else:
                messages.append({"role": "assistant", "content": reply.text})
            if command is None:
                bad_in_a_row += 1
                if bad_in_a_row >= ctx.limits.format_errors:
                    if reply.finish_reason == "length":
                        # The model ran out of output tokens before writing a command: the reply was
                        # cut, not malformed (--max-tokens too small for its reasoning or its prose).
                        raise AttemptOver(ExitReason.REPLY_CUT, f"{bad_in_a_row} replies without one command, the "
                                                                f"last cut at max tokens ({ctx.model.config.max_tokens})")
                    raise AttemptOver(ExitReason.FORMAT_ERRORS, f"{bad_in_a_row} replies without one command")
                blocks = len(shell_blocks(reply.text))
                note = ctx.templates.render("format_error", blocks=blocks)
                self._answer(messages, note, reply, call_id)
                ctx.log("user", note)
                continue
            bad_in_a_row = 0
            if command == SUBMIT:
                return ExitReason.SUBMITTED
            result = ctx.shell(command)
            observation = ctx.templates.render(
                "observation", output=result.output, exit_code=result.exit_code, repo_dir=REPO_DIR,
                timed_out=result.end is CommandEnd.TIMED_OUT, restarted=result.restarted,
                timeout=int(ctx.limits.command_timeout), steps_left=ctx.meter.steps_left())
            ctx.log("user", observation, command=command, exit_code=result.exit_code, end=result.end.value,
                    seconds=round(result.seconds, 4))
            self._answer(messages, observation, reply, call_id)
            ctx.meter.check()

    @staticmethod
    def _command(reply) -> tuple[str | None, str | None]:
        if reply.tool_calls:
            call = reply.tool_calls[0]
            try:
                command = json.loads(call.arguments or "{}").get("command")
            except (ValueError, AttributeError):
                command = None
            if len(reply.tool_calls) != 1 or not isinstance(command, str) or not command.strip():
                return None, call.id
            return command.strip(), call.id
        blocks = shell_blocks(reply.text)
        return (blocks[0], None) if len(blocks) == 1 and blocks[0] else (None, None)

    @staticmethod
    def _answer(messages: list, text: str, reply, call_id: str | None) -> None:
        if reply.tool_calls:
            # Every tool call needs its answer; the first carries the output, the rest a refusal.
            for i, call in enumerate(reply.tool_calls):
                messages.append({"role": "tool", "tool_call_id": call.id,
                                 "content": text if i == 0 else "Only one command per turn; this one was not run."})
        else:
            messages.append({"role": "user", "content": text})
