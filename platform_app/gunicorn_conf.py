"""gunicorn settings: ``gunicorn -c python:platform_app.gunicorn_conf platform_app.wsgi:application``.

The access log never holds a query string: the authorization callback's carries the merchant's
authorization code and state, and WeChat's events URL its signature. ``%(U)s`` is the path alone; the
Referer (``%(f)s``) is left out too, since it can hold the query of the page that linked here. The
callback's state, which travels in its path, is replaced by ``-`` (``ScrubbedLogger``).
"""

from typing import Any

from gunicorn.glogging import Logger  # type: ignore[import-untyped]

from platform_app.logfilters import scrub_request_line


class ScrubbedLogger(Logger):
    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in ("U", "r"):
            if isinstance(atoms.get(key), str):
                atoms[key] = scrub_request_line(atoms[key])
        return atoms


logger_class = ScrubbedLogger

accesslog = "-"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s" %(L)s %({x-request-id}o)s'
