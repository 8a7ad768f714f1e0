"""Texts of Django's admin and of the third-party apps in the console that their own catalogs leave
in English for Simplified Chinese (django-axes has no Chinese at all; Django and celery-beat miss
a few). Listing them here puts them in the console's catalog (``make messages``), which Django
consults before any app's (``LOCALE_PATHS``); nothing imports this module.
"""

from django.utils.translation import gettext_noop, ngettext_lazy

DJANGO_ADMIN = (
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
    gettext_noop("After you’ve created a user, you’ll be able to edit more user options."),
)

AXES = (
    gettext_noop("User Agent"),
    gettext_noop("IP Address"),
    gettext_noop("Username"),
    gettext_noop("HTTP Accept"),
    gettext_noop("Path"),
    gettext_noop("Attempt Time"),
    gettext_noop("Access lock out"),
    gettext_noop("access failure"),
    gettext_noop("access failures"),
    gettext_noop("GET Data"),
    gettext_noop("POST Data"),
    gettext_noop("Failed Logins"),
    gettext_noop("access attempt"),
    gettext_noop("access attempts"),
    gettext_noop("Access Attempt"),
    gettext_noop("Expires At"),
    gettext_noop("The time when access attempt expires and is no longer valid."),
    gettext_noop("access attempt expiration"),
    gettext_noop("access attempt expirations"),
    gettext_noop("Logout Time"),
    gettext_noop("Session key hash (sha256)"),
    gettext_noop("access log"),
    gettext_noop("access logs"),
    gettext_noop("Locked Out"),
    gettext_noop("Form Data"),
    gettext_noop("Meta Data"),
    gettext_noop("Not set"),
    gettext_noop("Attempt Remaining"),
)

CELERY_BEAT = (
    gettext_noop("Periodic Tasks Using This Schedule"),
    gettext_noop("Execution Options"),
    # Formatted with str.format(count, plural "s", "was"/"were"): the Chinese uses the count only.
    # xgettext:no-python-brace-format
    gettext_noop("{0} task{1} {2} successfully run"),
    gettext_noop('Cron Months (1-12) Of The Year to Run. Use "*" for "all". (Example: "1,12")'),
    gettext_noop('Cron Days Of The Week to Run. Use "*" for "all", Sunday is 0 or 7, Monday is 1. (Example: "0,5")'),
    # Its own Chinese keeps English words (False, None, enabled).
    gettext_noop("Set to False to disable the schedule"),
    gettext_noop(
        "Datetime that the schedule last triggered the task to run. Reset to None if enabled is set to False."
    ),
    ngettext_lazy("{0} task was successfully enabled", "{0} tasks were successfully enabled", 0),
    ngettext_lazy("{0} task was successfully disabled", "{0} tasks were successfully disabled", 0),
    ngettext_lazy("{0} task was successfully toggled", "{0} tasks were successfully toggled", 0),
)
