"""The playground's local web server: the standard library's threading HTTP server.

Safe by default:
- it binds to 127.0.0.1 only, and answers 403 to a Host header that is not this server's
  own (``127.0.0.1:PORT`` or ``localhost:PORT``): DNS rebinding gets nowhere;
- the printed URL carries a random token (as Jupyter's does); the first request swaps it
  for an HttpOnly, SameSite=Strict cookie and redirects to ``/``, so a shared link
  carries only the configuration (in the URL's fragment), never the token. Every other
  request without the cookie gets 403;
- the live channel (server-sent events) and every POST check Origin (and Sec-Fetch-Site)
  when the browser sends them, and POSTs must be JSON (or CSV for the upload): a page of
  another site can neither read the stream nor post a simple form;
- messages are checked against a closed schema (``schema.py``), bodies have size limits
  (413), uploads go through chainrule's CSV checks; nothing is evaluated;
- the page's three files are read from the package once, at start, into a table: no
  request path ever reaches the file system;
- every page is sent with a Content-Security-Policy that allows no inline script.

Status codes: 403 wrong Host / no or wrong token or cookie / foreign Origin; 404 unknown
path; 400 malformed message or CSV; 411 POST without a length; 413 too large; 415 wrong
Content-Type.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..data import DataError
from .schema import MAX_MESSAGE_BYTES, MessageError, parse_message
from .session import MAX_UPLOAD_BYTES, Session

__all__ = ["PlaygroundServer", "COOKIE", "CSP"]

COOKIE = "chainrule_playground"   # + "_PORT": cookies are per host, not per port
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/static/playground.js": ("playground.js", "text/javascript; charset=utf-8"),
          "/static/playground.css": ("playground.css", "text/css; charset=utf-8")}
KEEPALIVE_S = 15.0


def _load_static() -> dict[str, tuple[bytes, str]]:
    root = resources.files(__package__).joinpath("static")
    return {path: (root.joinpath(name).read_bytes(), ctype)
            for path, (name, ctype) in STATIC.items()}


class PlaygroundServer:
    """``PlaygroundServer().start()`` serves one playground on 127.0.0.1 in a background
    thread; ``url`` is the address with the token; ``stop()`` ends it."""

    def __init__(self, port: int = 0, config: dict[str, Any] | None = None,
                 quiet: bool = True) -> None:
        self.token = secrets.token_urlsafe(32)
        self.cookie = secrets.token_urlsafe(32)    # what the token is swapped for
        self.session = Session(config)
        self.static = _load_static()
        self.quiet = quiet
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.cookie_name = f"{COOKIE}_{self.port}"
        self.hosts = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        self.origins = {f"http://{h}" for h in self.hosts}
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def start(self) -> PlaygroundServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        name="playground-http")
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.session.close()
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(app: PlaygroundServer) -> type[BaseHTTPRequestHandler]:
    session = app.session

    class Handler(BaseHTTPRequestHandler):
        server_version = "chainrule-playground"
        sys_version = ""
        timeout = 60           # an idle or half-sent request does not hold a thread forever

        def version_string(self) -> str:
            return self.server_version

        def log_message(self, format: str, *args: Any) -> None:
            if not app.quiet:
                super().log_message(format, *args)

        # ------------------------------------------------------------ replies
        def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8",
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, code: int, obj: Any) -> None:
            self._send(code, json.dumps(obj, allow_nan=False).encode(),
                       "application/json; charset=utf-8")

        def _error(self, code: int, message: str) -> None:
            self.close_connection = True
            self._json(code, {"error": message})

        # ------------------------------------------------------------ checks
        def _host_ok(self) -> bool:
            return self.headers.get("Host", "") in app.hosts

        def _cookie_ok(self) -> bool:
            for part in self.headers.get("Cookie", "").split(";"):
                name, _, value = part.strip().partition("=")
                if name == app.cookie_name and hmac.compare_digest(value.encode(),
                                                                   app.cookie.encode()):
                    return True
            return False

        def _origin_ok(self) -> bool:
            origin = self.headers.get("Origin")
            if origin is not None and origin not in app.origins:
                return False
            site = self.headers.get("Sec-Fetch-Site")
            return site is None or site in ("same-origin", "none")

        def _guard(self) -> bool:
            """Host, then token or cookie; False when a reply was already sent."""
            if not self._host_ok():
                self._error(403, "this server answers only to 127.0.0.1 and localhost")
                return False
            url = urlsplit(self.path)
            token = parse_qs(url.query).get("token", [""])[0]
            if url.path == "/" and self.command == "GET" and token and \
                    hmac.compare_digest(token.encode(), app.token.encode()):
                # the swap: the token becomes a cookie and leaves the address bar
                self._send(303, b"", headers={
                    "Location": "/",
                    "Set-Cookie": f"{app.cookie_name}={app.cookie}; HttpOnly; SameSite=Strict; "
                                  f"Path=/"})
                return False
            if self._cookie_ok():
                return True
            self._error(403, "open the address that `chainrule playground` printed (it "
                             "carries the token)")
            return False

        # ------------------------------------------------------------ GET
        def do_GET(self) -> None:  # noqa: N802
            if not self._guard():
                return
            path = urlsplit(self.path).path
            if path in app.static:
                body, ctype = app.static[path]
                self._send(200, body, ctype)
            elif path == "/events":
                if self.command == "HEAD":
                    self._error(405, "the event stream answers GET only")
                    return
                if not self._origin_ok():
                    self._error(403, "foreign Origin")
                    return
                self._events()
            elif path == "/api/state":
                self._json(200, session.snapshot(with_data=True))
            elif path == "/api/export/model":
                try:
                    body = session.export_model()
                except (DataError, MessageError) as exc:
                    self._error(400, str(exc))
                    return
                self._send(200, body, "application/octet-stream", {
                    "Content-Disposition": 'attachment; filename="playground.safetensors"'})
            elif path == "/api/export/data.csv":
                self._send(200, session.export_csv(), "text/csv; charset=utf-8", {
                    "Content-Disposition": 'attachment; filename="playground-data.csv"'})
            else:
                self._error(404, "not found")

        do_HEAD = do_GET  # noqa: N815

        def _events(self) -> None:
            """Server-sent events: a snapshot whenever the session changes, coalesced; a
            comment line every 15 s while nothing happens (no work while paused)."""
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            seen, seen_data = -1, -1
            try:
                while True:
                    with session.changed:
                        if session.version == seen and not session.closed:
                            session.changed.wait(KEEPALIVE_S)
                        if session.closed:
                            return
                        fresh = session.version != seen
                        if fresh:
                            snap = session.snapshot(with_data=session.data_version != seen_data)
                            seen, seen_data = snap["version"], snap["data_version"]
                    if fresh:
                        data = json.dumps(snap, allow_nan=False, separators=(",", ":"))
                        self.wfile.write(b"data: " + data.encode() + b"\n\n")
                    else:
                        self.wfile.write(b": keepalive\n\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                return

        # ------------------------------------------------------------ POST
        def _body(self, limit: int, ctype: str) -> bytes | None:
            if not self._origin_ok():
                self._error(403, "foreign Origin")
                return None
            got = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if got != ctype:
                self._error(415, f"expected Content-Type {ctype}")
                return None
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self._error(411, "a POST needs a Content-Length")
                return None
            n = int(length)
            if n > limit:
                self._error(413, f"the body is larger than {limit} bytes")
                return None
            return self.rfile.read(n)

        def do_POST(self) -> None:  # noqa: N802
            if not self._guard():
                return
            path = urlsplit(self.path).path
            if path == "/api/message":
                body = self._body(MAX_MESSAGE_BYTES, "application/json")
                if body is None:
                    return
                try:
                    reply = _dispatch(session, parse_message(body))
                except MessageError as exc:
                    self._error(400, str(exc))
                    return
                except Exception as exc:  # a bug: say so, keep serving
                    self._error(500, f"internal error: {type(exc).__name__}: {exc}")
                    return
                self._json(200, reply)
            elif path == "/api/upload":
                body = self._body(MAX_UPLOAD_BYTES, "text/csv")
                if body is None:
                    return
                try:
                    self._json(200, session.upload_csv(body))
                except (DataError, MessageError) as exc:
                    self._error(400, str(exc).replace("upload.csv", "the CSV file"))
            else:
                self._error(404, "not found")

    return Handler


def _dispatch(session: Session, msg: dict[str, Any]) -> dict[str, Any]:
    kind = msg.pop("type")
    if kind == "config":
        session.set_config(msg)
    elif kind in ("play", "pause", "step", "reset"):
        getattr(session, kind)()
    elif kind == "example":
        session.set_example(msg["index"])
    elif kind == "select":
        return session.neuron(msg["layer"], msg["neuron"])
    elif kind == "link":
        return session.link(msg["layer"], msg["j"], msg["k"])
    elif kind == "backward":
        return session.backward()
    elif kind == "surface":
        return session.surface(msg["w1"], msg["w2"], msg.get("steps", 31))
    return {"ok": True, "version": session.version}
