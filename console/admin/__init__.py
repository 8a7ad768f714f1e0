"""The staff console on the stock Django admin: every model of the product, registered here.

Domain apps keep no admin of their own (they never import the console): one module here per app.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from console.admin import (  # noqa: F401  (registers the model admins)
    alerts,
    api_keys,
    audit,
    beat,
    cleanup,
    kf,
    lockout,
    merchants,
    platforms,
    staff,
    webhooks,
)

# Django's "delete selected" would erase merchants, keys and history in bulk: nothing in this
# console is deleted that way. Kf accounts have their own "delete on WeChat" action instead.
admin.site.disable_action("delete_selected")
admin.site.site_header = _("kfplatform staff console")
admin.site.site_title = _("kfplatform console")
admin.site.index_title = _("Dashboard")
admin.site.index_template = "console/dashboard.html"
# The model list is on the dashboard; without the side bar every list has the full 1366 px.
admin.site.enable_nav_sidebar = False
