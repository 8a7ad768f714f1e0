"""A small, stateful WeChat simulator, run as a separate process (`python -m sandbox`).

See `control.py` for the control API and `api.py` for the WeChat API surface. Nothing in the
product imports this package.
"""
