"""A scripted OpenAI-compatible server on loopback, for agent-loop tests: real HTTP, real JSON, the
real ``openai`` client on the other side; only the model's words are scripted.

The benchmarks' stub model (``bench/stub_server.py``) is this server with an instant fixed script.

``reply(request) -> str`` decides each answer from the request body (its messages or prompt), so a
test can script a whole multi-turn episode. ``fail_rate`` makes that share of calls answer 429 (with
Retry-After) or 500 instead, chosen by a seeded random generator. ``inject(request, path) -> (status,
body) | None`` answers chosen requests with a given status and JSON body instead (a content-filter
400, a 401, a 200 without choices); ``refused`` helps write one.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedServer:
    def __init__(self, reply: Callable[[dict], str], *, model: str = "scripted", fail_rate: float = 0.0,
                 seed: int = 0, tool_reply: Callable[[dict], dict | None] | None = None,
                 usage: Callable[[dict], dict] | None = None, port: int = 0,
                 n_ctx: int | None = None, max_model_len: int | None = None,
                 inject: Callable[[dict, str], tuple[int, dict] | None] | None = None):
        self.reply = reply
        self.usage = usage or (lambda body: {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120})
        self.tool_reply = tool_reply
        self.model = model
        self.n_ctx = n_ctx
        """Served as llama.cpp's ``GET /props`` ``default_generation_settings.n_ctx`` (None: no /props)."""
        self.max_model_len = max_model_len
        """Listed in the model's ``/v1/models`` entry as vLLM does (None: not listed)."""
        self.fail_rate = fail_rate
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.calls = 0
        self.failures = {429: 0, 500: 0}
        self.requests: list[dict] = []
        self.inject = inject
        self.every_request: list[dict] = []
        """Every request body, answered or not (injected errors, scripted failures) in arrival order."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real server: no connection per call

            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    entry = {"id": server.model, "object": "model"}
                    if server.max_model_len is not None:
                        entry["max_model_len"] = server.max_model_len
                    self._send(200, {"object": "list", "data": [entry]})
                elif self.path.rstrip("/") == "/props" and server.n_ctx is not None:
                    self._send(200, {"default_generation_settings": {"n_ctx": server.n_ctx}, "total_slots": 1})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with server.lock:
                    server.calls += 1
                    server.every_request.append(body)
                    injected = server.inject(body, self.path) if server.inject else None
                if injected is not None:
                    self._send(*injected)
                    return
                with server.lock:
                    failing = server.random.random() < server.fail_rate
                    status = server.random.choice((429, 500)) if failing else 200
                    if failing:
                        server.failures[status] += 1
                    else:
                        server.requests.append(body)
                if failing:
                    self._send(status, {"error": {"message": f"scripted {status}", "type": "scripted"}},
                               {"Retry-After": "0"} if status == 429 else None)
                    return
                if body.get("model") != server.model:
                    self._send(404, {"error": {"message": f"model {body.get('model')!r} not found"}})
                    return
                usage = server.usage(body)
                if self.path.endswith("/chat/completions"):
                    call = server.tool_reply(body) if server.tool_reply and body.get("tools") else None
                    message = {"role": "assistant", "content": None if call else server.reply(body)}
                    if call:
                        message["tool_calls"] = [{"id": f"call_{server.calls}", "type": "function",
                                                  "function": {"name": call["name"],
                                                               "arguments": json.dumps(call["arguments"])}}]
                    self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": server.model,
                                     "choices": [{"index": 0, "message": message,
                                                  "finish_reason": "tool_calls" if call else "stop"}],
                                     "usage": usage})
                elif self.path.endswith("/completions"):
                    self._send(200, {"id": "x", "object": "text_completion", "created": 0, "model": server.model,
                                     "choices": [{"index": 0, "text": server.reply(body), "finish_reason": "stop"}],
                                     "usage": usage})
                else:
                    self._send(404, {"error": {"message": "not found"}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "ScriptedServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def refused(status: int, message: str, *, code: str | None = None, param: str | None = None,
            kind: str = "invalid_request_error") -> tuple[int, dict]:
    """An error answer as OpenAI writes one: ``{"error": {"message", "type", "param", "code"}}``."""
    return status, {"error": {"message": message, "type": kind, "param": param, "code": code}}


def last_user_text(body: dict) -> str:
    """The newest user or tool message of a chat request."""
    for message in reversed(body.get("messages", [])):
        if message.get("role") in ("user", "tool"):
            return message.get("content") or ""
    return ""


def turn(body: dict) -> int:
    """How many assistant replies the conversation already holds."""
    return sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")


def bash(command: str) -> str:
    return f"THOUGHT: next step.\n\n```bash\n{command}\n```\n"
