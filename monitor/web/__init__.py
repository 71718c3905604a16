"""The web console for analysts: matches and alerts, a live rule editor with backtest, stories,
articles, sources, feedback and feeds of matches.

Public interface, used by the daemon and the CLI:

- ``Console``: what the console needs from its host (engine, current config, how to reload).
- ``create_app(console)``: the ASGI app (Starlette), also serving /healthz, /readyz, /metrics.
- ``WebServer(host, port, console)``: that app under uvicorn in a thread; refuses a non-loopback
  address when no password is set (``AccessError``).
"""

from monitor.web.access import AccessError, Passwords
from monitor.web.app import Console, create_app
from monitor.web.server import WebServer

__all__ = ["AccessError", "Console", "Passwords", "WebServer", "create_app"]
