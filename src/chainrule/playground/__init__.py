"""chainrule.playground: train a small network in the browser and watch the text's
equations with live numbers (``chainrule playground``).

The training is chainrule's own (float64, ``Network.backprop`` and ``optim.SGD``), in
this process; the page (served from the package, works offline) draws it live over
server-sent events. See docs/playground.md and :mod:`chainrule.playground.server` for
what keeps it safe.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PlaygroundServer", "serve"]


def __getattr__(name: str) -> Any:
    if name == "PlaygroundServer":
        from .server import PlaygroundServer

        return PlaygroundServer
    raise AttributeError(name)


def serve(port: int = 0, open_browser: bool = True, say: Any = print) -> None:
    """Serve the playground on 127.0.0.1 until Ctrl-C; open it in the browser, or with
    ``open_browser=False`` only print its address."""
    from .server import PlaygroundServer

    app = PlaygroundServer(port=port)
    say(f"chainrule playground: {app.url}")
    say("(the address carries a secret token: do not share it; Ctrl-C stops the server)")
    if open_browser:
        import webbrowser

        webbrowser.open(app.url)
    try:
        app.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        app.session.close()
        app.httpd.server_close()
