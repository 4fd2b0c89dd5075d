"""What the `monkeys` command prints when its output is not a terminal (piped, or redirected to a file)."""

import os
import subprocess
import sys


def test_piped_tables_keep_ids_and_headers_whole(bundled_tasks):
    # No COLUMNS and no terminal: without a width of its own, rich would assume 80 columns and cut
    # the table's cells and headers with an ellipsis.
    env = {name: value for name, value in os.environ.items() if name != "COLUMNS"}
    done = subprocess.run([sys.executable, "-m", "monkeys", "tasks", "list"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    cells = {cell.strip() for line in lines for cell in line.replace("┃", "│").split("│")}
    for task in bundled_tasks:
        assert task.instance_id in cells, f"{task.instance_id} is not whole in:\n{done.stdout}"
        assert task.repo in cells, f"{task.repo} is not whole in:\n{done.stdout}"
    header = next(line for line in lines if "instance_id" in line)
    assert [cell.strip() for cell in header.split("┃")[1:-1]] == [
        "instance_id", "repo", "version", "difficulty", "F2P", "P2P", "flaky"]
    # As wide as the table, no wider: no line is padded out to the console's width.
    assert max(len(line) for line in lines) < 200
    assert "…" not in done.stdout
