"""gunicorn settings: ``gunicorn -c python:platform_app.gunicorn_conf platform_app.wsgi:application``.

The access log never holds a query string: the authorization callback's carries the merchant's
authorization code and state, and WeChat's events URL its signature. ``%(U)s`` is the path alone; the
Referer (``%(f)s``) is left out too, since it can hold the query of the page that linked here.
"""

accesslog = "-"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s" %(L)s %({x-request-id}o)s'
