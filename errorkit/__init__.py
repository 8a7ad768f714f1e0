"""Domain errors that say how they read to a client, so one place turns them into HTTP answers.

A leaf: it imports nothing of the project (nor Django), so every domain app may raise its errors
from services without knowing about DRF; the API's exception handler
(``platform_app.api_errors.exception_handler``) is the one place that maps them to the error
envelope, and the authorization flow's pages render the same fields as HTML.
"""

from errorkit.errors import DomainError

__all__ = ["DomainError"]
