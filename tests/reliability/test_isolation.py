"""The tenant-isolation matrix: every URL of the API and the admin × every kind of caller × own and
foreign objects, each cell with the status it must answer.

The URL patterns come from the resolver, not from a list kept by hand: a new endpoint that is not in
the matrix fails `test_every_url_pattern_is_in_the_matrix` until someone says who may call it.

Callers: merchant A's API key, merchant B's key, a revoked key, no key, a staff operator, a staff
viewer, a logged-in non-staff user. "Own" is the caller's own object (A's for A, B's for B, A's for
callers without a tenant); "foreign" is the other merchant's. Another merchant's object answers
404, never 403 or data; nobody without a session that is staff gets anything from the admin.

The platform axis (issue 19): the whole matrix runs twice, B being another merchant, then B being
the same account (A's appid) authorized through another platform. A key of one authorization sees
and touches nothing of the other's, though both are the same merchant on WeChat.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from audit.services import Actor
from authorizers.api_keys import api_key_issue, api_key_revoke
from cleanup.models import CleanupRule, CleanupRun
from console import roles
from kfaccounts.models import DeletionRequest, KfAccount
from tests.conftest import WECHAT
from tests.reliability import figures
from webhooks.models import WebhookEndpoint

pytestmark = [pytest.mark.django_db, pytest.mark.reliability]

PRINCIPALS = ("merchant_a", "merchant_b", "revoked_key", "no_key", "staff_operator", "staff_viewer", "non_staff_user")
MERCHANTS = ("merchant_a", "merchant_b")
STAFF = ("staff_operator", "staff_viewer")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


# ------------------------------------------------------------------------------ the URL patterns


def _walk(patterns: list, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route, entry


def url_patterns() -> list[str]:
    return [route for route, _ in _walk(get_resolver().url_patterns)]


# Django's own admin views, by their route under admin/ (routes of registered models are derived
# from the admin registry below).
ADMIN_SITE_ROUTES = {
    "admin/": "index",
    "admin/login/": "login",
    "admin/logout/": "logout",
    "admin/password_change/": "password_change",
    "admin/password_change/done/": "password_change_done",
    "admin/autocomplete/": "autocomplete",
    "admin/jsi18n/": "jsi18n",
    "admin/r/<path:content_type_id>/<path:object_id>/": "view_on_site",
    "admin/auth/user/<id>/password/": "user_password",
    "admin/authorizers/authorizer/authorization-link/": "authorization_link",
    "admin/cleanup/cleanuprule/<path:object_id>/upload-list/": "rule_upload_list",
    "admin/cleanup/cleanuprule/<path:object_id>/dry-run/": "rule_dry_run",
    "admin/(?P<url>.*)$": "catch_all",
}
ADMIN_MODEL_ROUTES = {
    "": "changelist",
    "add/": "add",
    "<path:object_id>/history/": "history",
    "<path:object_id>/delete/": "delete",
    "<path:object_id>/change/": "change",
    "<path:object_id>/": "object_redirect",
}


def admin_routes() -> dict[str, tuple[str, Any]]:
    routes: dict[str, tuple[str, Any]] = {r: (kind, None) for r, kind in ADMIN_SITE_ROUTES.items()}
    # The admin lists the apps in its own order: take its pattern as it is, checking it names them all.
    labels = {model._meta.app_label for model in admin.site._registry}
    for route in url_patterns():
        found = re.fullmatch(r"admin/\^\(\?P<app_label>([a-z_|]+)\)/\$", route)
        if found and set(found.group(1).split("|")) == labels:
            routes[route] = ("app_index", None)
    for model in admin.site._registry:
        base = f"admin/{model._meta.app_label}/{model._meta.model_name}/"
        for suffix, kind in ADMIN_MODEL_ROUTES.items():
            routes[base + suffix] = (kind, model)
    return routes


# ------------------------------------------------------------------------------- the callers


@dataclass
class World:
    a: Any
    b: Any
    clients: dict[str, Client]
    users: dict[str, User | None]
    objects: dict[str, dict[str, Any]]  # "a"/"b" -> {"deletion": …, "kf": …}

    def tenant(self, principal: str, whose: str) -> str:
        """Which merchant's object: own is the caller's (A for callers without a tenant)."""
        mine = "b" if principal == "merchant_b" else "a"
        return mine if whose == "own" else ("a" if mine == "b" else "b")


def _staff_user(username: str, group_name: str) -> User:
    """A staff user in one of the console's roles (groups the product's migration creates)."""
    group = Group.objects.get(name=group_name)
    user = User.objects.create_user(username=username, password="x-" + username, is_staff=True)
    user.groups.add(group)
    return user


def _tenant_objects(merchant: Any, name: str, wechat: Any) -> dict[str, Any]:
    """A merchant's cleanup rule and run, webhook endpoint, and a spare of each to DELETE."""
    from cleanup import services as cleanup_services
    from webhooks import services as webhook_services

    actor = Actor.system("matrix")
    rule_values = {
        "name": f"rule-{name}",
        "mode": "dry_run",
        "schedule_kind": "crontab",
        "crontab": "0 3 * * *",
        "pattern": "temp-*",
    }
    rule = cleanup_services.cleanup_rule_create(authorizer=merchant, actor=actor, values=rule_values)
    spare_rule = cleanup_services.cleanup_rule_create(
        authorizer=merchant, actor=actor, values={**rule_values, "name": f"spare-{name}"}
    )
    (run,) = cleanup_services.cleanup_run_request(rule=rule, actor=actor, dry_run=True, trigger="api")
    hooks = []
    for label in ("hook", "spare"):
        url = f"http://127.0.0.1:9/{label}-{name}"
        wechat.post(url, body="ok")
        endpoint, _ = webhook_services.webhook_endpoint_register(authorizer=merchant, url=url, actor=actor)
        hooks.append(endpoint)
    return {"rule": rule, "rule_spare": spare_rule, "run": run, "webhook": hooks[0], "webhook_spare": hooks[1]}


@pytest.fixture(params=["another merchant", "same merchant on another platform"])
def world(request, make_authorizer, component_ready, wechat, settings) -> World:
    from kfaccounts.models import DeletionStatus

    wechat.get(f"{WECHAT}/cgi-bin/customservice/getkflist", json={"kf_list": []})
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    a = make_authorizer()
    if request.param == "another merchant":
        b = make_authorizer()
    else:
        b = make_authorizer(appid=a.appid, platform=request.getfixturevalue("platform_b"))
    now = timezone.now()
    objects: dict[str, dict[str, Any]] = {}
    for name, merchant in (("a", a), ("b", b)):
        kf = KfAccount.objects.create(authorizer=merchant, kf_account=f"kf{name}@shop{name}", last_seen_at=now)
        deletion = DeletionRequest.objects.create(
            authorizer=merchant,
            kf_account=f"old{name}@shop{name}",
            requested_by_kind="system",
            status=DeletionStatus.SUCCEEDED,
            finished_at=now,
        )
        objects[name] = {"kf": kf, "deletion": deletion, **_tenant_objects(merchant, name, wechat)}
    keys = {}
    for principal, merchant in (("merchant_a", a), ("merchant_b", b), ("revoked_key", a)):
        api_key, key = api_key_issue(authorizer=merchant, actor=Actor.system("matrix"))
        keys[principal] = key
        if principal == "revoked_key":
            api_key_revoke(api_key=api_key, actor=Actor.system("matrix"))
    users: dict[str, User | None] = {
        "staff_viewer": _staff_user("viewer", roles.VIEWER),
        "staff_operator": _staff_user("operator", roles.OPERATOR),
        "non_staff_user": User.objects.create_user(username="someone", password="x-someone"),
    }
    clients = {}
    for principal in PRINCIPALS:
        client = Client(HTTP_AUTHORIZATION=f"Api-Key {keys[principal]}") if principal in keys else Client()
        user = users.get(principal)
        if user is not None:
            client.force_login(user)
        clients[principal] = client
        users.setdefault(principal, None)
    return World(a=a, b=b, clients=clients, users=users, objects=objects)


# ----------------------------------------------------------------------------- the API matrix


@dataclass(frozen=True)
class Cell:
    method: str
    path: str
    expected: int
    check: Callable[[Any], None] | None = None


def _api_expectation(principal: str, allowed: int) -> int:
    return allowed if principal in MERCHANTS else 401


def _body_only_tenant(world: World, tenant: str, field: str) -> Callable[[Any], None]:
    other = "b" if tenant == "a" else "a"

    def check(response: Any) -> None:
        text = response.content.decode()
        assert world.objects[other]["kf"].kf_account not in text, "another merchant's kf account in the body"
        assert world.objects[other]["deletion"].kf_account not in text, "another merchant's deletion in the body"
        if getattr(world, other).appid != getattr(world, tenant).appid:  # the platform axis: one appid
            assert getattr(world, other).appid not in text, "another merchant's appid in the body"

    return check


def api_cells(route: str, world: World, principal: str, whose: str) -> list[Cell]:
    t = world.tenant(principal, whose)
    deletion = world.objects[t]["deletion"]
    kf = world.objects[t]["kf"]
    own = whose == "own" or principal not in MERCHANTS
    body_check = _body_only_tenant(world, t, "") if principal in MERCHANTS and own else None

    def others(path: str, allowed: set[str]) -> list[Cell]:
        return [Cell(m, path, _api_expectation(principal, 405)) for m in METHODS if m not in allowed]

    if route == "api/v1/authorizer/":
        # No object in the URL: a merchant reads its own, whichever row of the matrix this is.
        caller = world.b if principal == "merchant_b" else world.a

        def is_own(response: Any) -> None:
            assert response.json()["appid"] == caller.appid
            # On the platform axis both have that appid: the authorization read is the caller's own.
            assert response.json()["component_appid"] == caller.platform.component_appid

        return [
            Cell(
                "GET",
                "/api/v1/authorizer/",
                _api_expectation(principal, 200),
                is_own if principal in MERCHANTS else None,
            ),
            *others("/api/v1/authorizer/", {"GET"}),
        ]
    if route == "api/v1/ping/":
        caller_appid = (world.b if principal == "merchant_b" else world.a).appid

        def is_caller(response: Any) -> None:
            assert response.json()["appid"] == caller_appid

        return [
            Cell(
                "GET", "/api/v1/ping/", _api_expectation(principal, 200), is_caller if principal in MERCHANTS else None
            ),
            *others("/api/v1/ping/", {"GET"}),
        ]
    if route == "api/v1/kf-accounts/":
        return [
            Cell("GET", "/api/v1/kf-accounts/?include_gone=true", _api_expectation(principal, 200), body_check),
            *others("/api/v1/kf-accounts/", {"GET"}),
        ]
    if route == "api/v1/kf-accounts/sync/":
        return [
            Cell("POST", "/api/v1/kf-accounts/sync/", _api_expectation(principal, 202)),
            *others("/api/v1/kf-accounts/sync/", {"POST"}),
        ]
    if route == "api/v1/kf-accounts/<str:kf_account>/":
        # A name is an intent, not an object: asking to delete "B's" name makes a request of one's
        # own (scoped to one's own authorizer; WeChat would answer 65401), never touches B.
        path = f"/api/v1/kf-accounts/{kf.kf_account}/"
        return [Cell("DELETE", path, _api_expectation(principal, 202)), *others(path, {"DELETE"})]
    if route == "api/v1/deletions/":
        return [
            Cell("GET", "/api/v1/deletions/", _api_expectation(principal, 200), body_check),
            Cell("POST", "/api/v1/deletions/", _api_expectation(principal, 202)),
            *others("/api/v1/deletions/", {"GET", "POST"}),
        ]
    if route == "api/v1/deletions/<int:pk>/":
        path = f"/api/v1/deletions/{deletion.pk}/"
        expected = _api_expectation(principal, 200 if own else 404)
        return [
            Cell("GET", path, expected),
            # 405 for other methods whatever the id (own, foreign, none): it tells nothing about B.
            *others(path, {"GET"}),
        ]
    return _generic_cells(route, world, principal, whose)


# Routes of merchant-owned objects other than the above (cleanup rules and runs, webhooks): the
# object in the URL is the caller's own or the other merchant's; which methods exist comes from
# the view class. Own: anything but a denial (a 4xx about the body is fine: the matrix sends a
# body that is not the endpoint's); foreign: 404 for every method the view has; no key: 401.
GENERIC_OBJECTS = {
    "api/v1/cleanup-rules/<int:pk>/": "rule",
    "api/v1/cleanup-runs/<int:pk>/": "run",
    "api/v1/webhooks/<int:pk>/": "webhook",
}
GENERIC_LISTS = {"api/v1/cleanup-rules/": "rule", "api/v1/cleanup-runs/": "run", "api/v1/webhooks/": "webhook"}
ALLOWED = {200, 201, 202, 204, 400, 409, 422}


def _view_methods(route: str) -> set[str]:
    callback = dict(_walk(get_resolver().url_patterns))[route].callback
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    return {m for m in METHODS if view_class is not None and hasattr(view_class, m.lower())}


def _generic_cells(route: str, world: World, principal: str, whose: str) -> list[Cell]:
    t = world.tenant(principal, whose)
    own = whose == "own" or principal not in MERCHANTS
    methods = _view_methods(route)
    if route in GENERIC_LISTS:
        path = "/" + route
        key = GENERIC_LISTS[route]
        other = "a" if principal == "merchant_b" else "b"  # a list has no object: the other is the other
        foreign_object = world.objects[other][key]

        def only_own(response: Any) -> None:
            marker = str(getattr(foreign_object, "url", "") or getattr(foreign_object, "name", "") or "")
            ids = [item.get("id") for item in response.json().get("results", [])]
            assert foreign_object.pk not in ids, f"another merchant's {key} listed"
            assert not marker or marker not in response.content.decode(), f"another merchant's {key} in the body"

        cells = [
            Cell(m, path, _api_expectation(principal, 200 if m == "GET" else 201), None)
            for m in sorted(methods)
            if m == "GET"
        ]
        if principal in MERCHANTS and cells:
            cells = [Cell("GET", path, 200, only_own)]
        posts = [Cell("POST", path, 0) for m in methods if m == "POST"]
        return [*cells, *posts, *[Cell(m, path, _api_expectation(principal, 405)) for m in METHODS if m not in methods]]
    prefix = next(p for p in GENERIC_OBJECTS if route.startswith(p))
    key = GENERIC_OBJECTS[prefix]
    cells = []
    for method in METHODS:
        spare = method == "DELETE" and f"{key}_spare" in world.objects[t]
        obj = world.objects[t][f"{key}_spare" if spare else key]
        path = "/" + route.replace("<int:pk>", str(obj.pk))
        if method not in methods:
            cells.append(Cell(method, path, _api_expectation(principal, 405)))
        elif principal not in MERCHANTS:
            cells.append(Cell(method, path, 401))
        else:
            cells.append(Cell(method, path, 0 if own else 404))
    return cells


UNKNOWN_PLATFORM = "wx0000000000000404"
DEFAULT_PLATFORM = "wx0c0a1d2e3f405162"  # WECHAT_COMPONENT_APPID of the tests (the demo default)

# Who may call the rest: the same for every caller.
PUBLIC_ROUTES: dict[str, list[tuple[str, str, set[int]]]] = {
    # WeChat's pushes: nobody without WeChat's signature gets past 400.
    "wechat/component/events/": [
        ("POST", "/wechat/component/events/", {400}),
        ("GET", "/wechat/component/events/", {405}),
    ],
    "wechat/authorize/": [("GET", "/wechat/authorize/", {200, 302, 502, 503})],
    "wechat/authorize/callback/": [("GET", "/wechat/authorize/callback/", {400})],
    "wechat/authorize/callback/<str:state>/": [("GET", "/wechat/authorize/callback/forged/", {400})],
    # The old address of the link maker: a redirect to the console's page, which checks who asks.
    "wechat/authorize/link/": [("GET", "/wechat/authorize/link/", {301})],
    # Each platform's (issue 19): a component appid not served is 404 for everyone; the default
    # platform answers its own appid's paths as it answers the older ones.
    "wechat/platforms/<str:component_appid>/events/": [
        ("POST", f"/wechat/platforms/{UNKNOWN_PLATFORM}/events/", {404}),
        ("POST", f"/wechat/platforms/{DEFAULT_PLATFORM}/events/", {400}),
        ("GET", f"/wechat/platforms/{DEFAULT_PLATFORM}/events/", {405}),
    ],
    "wechat/platforms/<str:component_appid>/authorize/": [
        ("GET", f"/wechat/platforms/{UNKNOWN_PLATFORM}/authorize/", {404}),
        ("GET", f"/wechat/platforms/{DEFAULT_PLATFORM}/authorize/", {200, 302, 502, 503}),
    ],
    "wechat/platforms/<str:component_appid>/authorize/callback/": [
        ("GET", f"/wechat/platforms/{UNKNOWN_PLATFORM}/authorize/callback/", {404}),
        ("GET", f"/wechat/platforms/{DEFAULT_PLATFORM}/authorize/callback/", {400}),
    ],
    "wechat/platforms/<str:component_appid>/authorize/callback/<str:state>/": [
        ("GET", f"/wechat/platforms/{DEFAULT_PLATFORM}/authorize/callback/forged/", {400}),
    ],
    "api/schema/": [("GET", "/api/schema/", {200})],
    "api/docs/": [("GET", "/api/docs/", {200})],
    "healthz": [("GET", "/healthz", {200})],
    "readyz": [("GET", "/readyz", {200, 503})],
    # Only a scraper holding METRICS_TOKEN (set for this test): everyone else 404.
    "metrics": [("GET", "/metrics", {404})],
    # The language switch of the console's pages: a redirect back, for anyone.
    "i18n/setlang/": [("POST", "/i18n/setlang/", {302})],
    # Any other URL under /api/: the JSON 404 envelope, for anyone, whatever the method.
    "^api/": [("GET", "/api/v1/no-such-thing/", {404}), ("POST", "/api/nothing", {404})],
}
API_ROUTES = {
    "api/v1/authorizer/",
    "api/v1/ping/",
    "api/v1/kf-accounts/",
    "api/v1/kf-accounts/sync/",
    "api/v1/kf-accounts/<str:kf_account>/",
    "api/v1/deletions/",
    "api/v1/deletions/<int:pk>/",
}
ROUTE_PREFIXES_NOT_OURS = ("static/",)


def _generic_routes() -> set[str]:
    return {r for r in url_patterns() if r in GENERIC_LISTS or any(r.startswith(p) for p in GENERIC_OBJECTS)}


def test_every_url_pattern_is_in_the_matrix() -> None:
    generic = {r for r in url_patterns() if r in GENERIC_LISTS or any(r.startswith(p) for p in GENERIC_OBJECTS)}
    known = API_ROUTES | generic | set(PUBLIC_ROUTES) | set(admin_routes())
    missing = [r for r in url_patterns() if r not in known and not r.startswith(ROUTE_PREFIXES_NOT_OURS)]
    assert not missing, f"URL patterns without a row in the isolation matrix: {missing}"


# --------------------------------------------------------------------------- the admin matrix


def _admin_expected(world: World, principal: str, kind: str, model: Any, obj: Any) -> set[int]:
    user = world.users.get(principal)
    if user is None or not user.is_staff:
        return {200} if kind == "login" else {302}  # to the login page
    request = RequestFactory().get("/admin/")
    request.user = user
    if kind == "index" or kind in ("password_change", "password_change_done", "jsi18n"):
        return {200}
    if kind == "login":
        return {302}
    if kind == "logout":
        return {405}  # POST only
    if kind == "autocomplete":
        return {403}  # without its parameters
    if kind in ("view_on_site", "catch_all"):
        return {404}
    if kind == "user_password":
        return {200 if user.has_perm("auth.change_user") else 403}
    if kind == "authorization_link":  # the platform's own page link: anyone who may see merchants
        return {200 if user.has_perm("authorizers.view_authorizer") else 403}
    if kind == "rule_upload_list":
        return {200 if user.has_perm("cleanup.change_cleanuprule") else 403}
    if kind == "rule_dry_run":
        return {403}  # POST only; a GET is refused whoever asks
    if kind == "app_index":
        return {200, 404}  # 404 for an app where the role has no permission
    assert model is not None
    model_admin = admin.site._registry[model]
    if kind == "changelist":
        return {200 if model_admin.has_view_or_change_permission(request) else 403}
    if kind == "add":
        return {200 if model_admin.has_add_permission(request) else 403}
    if kind == "object_redirect":
        return {302}
    if obj is None:
        # No such object: the admin sends staff to its index (history looks the object up before it
        # checks the permission; a redirect shows nothing either way).
        if kind == "history":
            return {302}
        if kind == "delete":
            allowed = model_admin.has_delete_permission(request)
        else:
            allowed = model_admin.has_view_or_change_permission(request)
        return {302 if allowed else 403}
    if kind in ("change", "history"):
        return {200 if model_admin.has_view_or_change_permission(request, obj) else 403}
    if kind == "delete":
        return {200 if model_admin.has_delete_permission(request, obj) else 403}
    raise KeyError(kind)


def _admin_object(world: World, model: Any, tenant: str) -> Any:
    from authorizers.models import Authorizer

    merchant = getattr(world, tenant)
    if model is Authorizer:
        return merchant
    for field in ("authorizer", "authorizer_id"):
        if field in {f.name for f in model._meta.fields} or (field == "authorizer_id" and hasattr(model, field)):
            found = model._default_manager.filter(authorizer=merchant).first()
            if found is not None:
                return found
    return model._default_manager.order_by("pk").first()


def _admin_path(route: str, world: World, kind: str, model: Any, obj: Any) -> str:
    if kind == "app_index":
        return f"/admin/{model._meta.app_label if model else 'authorizers'}/"
    if kind == "view_on_site":
        from django.contrib.contenttypes.models import ContentType

        return f"/admin/r/{ContentType.objects.get_for_model(type(world.a)).pk}/{world.a.pk}/"
    if kind == "catch_all":
        return "/admin/no-such-page/"
    if kind in ("rule_upload_list", "rule_dry_run"):
        return "/" + route.replace("<path:object_id>", str(world.objects["a"]["rule"].pk))
    if kind == "user_password":
        viewer = world.users["staff_viewer"]
        assert viewer is not None
        return f"/admin/auth/user/{viewer.pk}/password/"
    if model is None:
        return "/" + route
    object_id = obj.pk if obj is not None else 987654321
    return "/" + re.sub(r"<path:object_id>", str(object_id), route)


# ------------------------------------------------------------------------------------ the run


def test_the_viewer_role_can_change_nothing_and_no_role_can_delete() -> None:
    viewer = Group.objects.get(name=roles.VIEWER)
    operator = Group.objects.get(name=roles.OPERATOR)
    assert viewer.permissions.exists() and operator.permissions.exists()
    assert not viewer.permissions.exclude(codename__startswith="view_").exists()
    assert not operator.permissions.filter(codename__startswith="delete_").exists()
    assert not operator.permissions.filter(content_type__app_label="auth").exists()


def test_isolation_matrix(world: World, settings) -> None:
    settings.METRICS_TOKEN = "a-token-no-caller-here-has"
    # Every caller here is the same test client address: the authorize throttle (tested on its own)
    # would answer 429 after 30 of the flow's cells in one minute, and sooner on a faster machine.
    settings.WECHAT_AUTHORIZE_RATE_LIMIT = "100000/min"
    b_before = _tenant_state(world.b)
    cells = 0
    failures: list[str] = []

    def observe(principal: str, method: str, path: str, expected: set[int], check: Callable | None = None) -> None:
        nonlocal cells
        client = world.clients[principal]
        content_type = "application/json"
        data = '{"kf_account": "new@x"}' if method in ("POST", "PUT", "PATCH") and path.startswith("/api/") else ""
        response = client.generic(method, path, data, content_type=content_type)
        cells += 1
        if response.status_code not in expected:
            failures.append(f"{principal:15} {method:6} {path}: {response.status_code}, expected {sorted(expected)}")
        elif check is not None and response.status_code < 300:
            try:
                check(response)
            except AssertionError as exc:
                failures.append(f"{principal:15} {method:6} {path}: {exc}")

    # B last: until B itself calls, nothing anyone did may have changed B's data.
    order = [p for p in PRINCIPALS if p != "merchant_b"] + ["merchant_b"]
    for principal in order:
        if principal == "merchant_b":
            assert _tenant_state(world.b) == b_before, "a call by someone other than B changed B's data"
        for whose in ("own", "foreign"):
            for route in sorted(API_ROUTES | _generic_routes()):
                for cell in api_cells(route, world, principal, whose):
                    expected = ALLOWED if cell.expected == 0 else {cell.expected}
                    if cell.expected == 0 and principal not in MERCHANTS:
                        expected = {401}
                    observe(principal, cell.method, cell.path, expected, cell.check)
            for entries in PUBLIC_ROUTES.values():
                for method, path, expected in entries:
                    observe(principal, method, path, expected)
            for route, (kind, model) in admin_routes().items():
                tenant = world.tenant(principal, whose)
                obj = _admin_object(world, model, tenant) if model is not None else None
                path = _admin_path(route, world, kind, model, obj)
                observe(principal, "GET", path, _admin_expected(world, principal, kind, model, obj))

    figures.record(
        "tenant isolation",
        cells_checked=cells,
        url_patterns=len(url_patterns()),
        callers=len(PRINCIPALS),
        wrong=len(failures),
    )
    assert not failures, "\n".join(failures[:60])


def _tenant_state(merchant: Any) -> dict[str, Any]:
    merchant.refresh_from_db()
    return {
        "authorizer": (merchant.status, merchant.func_ids, merchant.access_token_ciphertext),
        "kf": sorted(KfAccount.objects.filter(authorizer=merchant).values_list("kf_account", "gone_at")),
        "deletions": sorted(
            DeletionRequest.objects.filter(authorizer=merchant).values_list("kf_account", "status", "requested_by_id")
        ),
        "rules": sorted(
            CleanupRule.objects.filter(authorizer=merchant).values_list("pk", "name", "enabled", "archived_at")
        ),
        "runs": sorted(CleanupRun.objects.filter(authorizer=merchant).values_list("pk", "status")),
        "webhooks": sorted(
            WebhookEndpoint.objects.filter(authorizer=merchant).values_list(
                "pk", "url", "disabled_at", "secret_ciphertext"
            )
        ),
    }
