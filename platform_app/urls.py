"""All the URLs: the wiring between apps lives here and only here."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from authorizers import api as authorizer_api
from authorizers import views as wechat_views
from console import views as console_views
from observability import views as observability_views
from platform_app import api_errors, health

urlpatterns = [
    path("wechat/component/events/", wechat_views.component_events, name="wechat-component-events"),
    path("wechat/authorize/", wechat_views.authorize, name="wechat-authorize"),
    path("wechat/authorize/callback/", wechat_views.authorize_callback, name="wechat-authorize-callback"),
    path(
        "wechat/authorize/callback/<str:state>/",
        wechat_views.authorize_callback,
        name="wechat-authorize-callback-state",
    ),
    path("wechat/authorize/link/", wechat_views.authorize_link, name="wechat-authorize-link"),
    # Each platform served (issue 19); the paths above serve the default platform, as they always did.
    path(
        "wechat/platforms/<str:component_appid>/events/",
        wechat_views.component_events,
        name="wechat-platform-events",
    ),
    path(
        "wechat/platforms/<str:component_appid>/authorize/",
        wechat_views.authorize,
        name="wechat-platform-authorize",
    ),
    path(
        "wechat/platforms/<str:component_appid>/authorize/callback/",
        wechat_views.authorize_callback,
        name="wechat-platform-authorize-callback",
    ),
    path(
        "wechat/platforms/<str:component_appid>/authorize/callback/<str:state>/",
        wechat_views.authorize_callback,
        name="wechat-platform-authorize-callback-state",
    ),
    path("api/v1/authorizer/", authorizer_api.OwnAuthorizerView.as_view(), name="api-authorizer"),
    path("api/v1/ping/", authorizer_api.PingView.as_view(), name="api-ping"),
    path("api/v1/", include("kfaccounts.urls")),
    path("api/v1/", include("cleanup.urls")),
    path("api/v1/", include("webhooks.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # The admin index is the console's dashboard; every other admin URL is the stock site's.
    path("admin/", admin.site.admin_view(console_views.dashboard), name="console-dashboard"),
    path("metrics", observability_views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    # Last: any other URL under /api/ answers the JSON envelope, also with DEBUG on (handler404 is
    # not used then, and Django would answer its HTML debug page).
    re_path(r"^api/", api_errors.api_not_found, name="api-not-found"),
]

handler404 = "platform_app.api_errors.not_found"
