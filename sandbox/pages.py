"""HTML of the sandbox's authorization page (componentloginpage) and its error page."""

from __future__ import annotations

from html import escape

from .state import Account, permission_sets_for

_KIND_LABELS = {
    "subscription": "订阅号 subscription",
    "service": "服务号 service",
    "mini_program": "小程序 Mini Program",
}

_STYLE = """
body{font-family:-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;background:#f2f2f2;margin:0;color:#222}
.banner{background:#07c160;color:#fff;padding:10px 24px;font-size:14px}
main{max-width:720px;margin:24px auto;background:#fff;border-radius:8px;padding:24px 32px}
h1{font-size:20px;margin-top:0}
fieldset{border:1px solid #e5e5e5;border-radius:6px;margin:16px 0;padding:12px 16px}
legend{font-weight:600;padding:0 6px}
label{display:block;padding:6px 0;cursor:pointer}
.meta{color:#888;font-size:12px;margin-left:24px}
.sets{margin:0 0 12px 24px;font-size:13px;color:#555}
.sets label.set{padding:2px 0}
button{background:#07c160;color:#fff;border:0;border-radius:4px;padding:10px 28px;font-size:16px;cursor:pointer}
.error{color:#c00}
"""


def _layout(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        '<div class="banner">WeChat sandbox · 微信模拟器 — not the real WeChat</div>'
        f"<main>{body}</main></body></html>"
    )


def authorization_page(
    *,
    component_appid: str,
    pre_auth_code: str,
    redirect_uri: str,
    accounts: list[Account],
    category_ids: list[int] | None = None,
) -> str:
    """One radio per account; under each, the permission sets WeChat offers that account's kind
    (named ``func_<appid>``, all ticked as WeChat's page ticks them), limited by category_id_list."""
    rows = []
    for index, account in enumerate(accounts):
        facts = [
            _KIND_LABELS.get(account.kind, account.kind),
            "已认证 certified" if account.certified else "未认证 not certified",
            "新版客服已开启 kf enabled" if account.kf_enabled else "新版客服未开启 kf not enabled",
        ]
        if account.authorized:
            facts.append("已授权 already authorized: " + ", ".join(str(f) for f in account.func))
        appid = escape(account.appid)
        checks = "".join(
            f'<label class="set"><input type="checkbox" name="func_{appid}" value="{fid}" id="func-{appid}-{fid}"'
            f" checked> {fid} · {escape(label)}</label>"
            for fid, label in permission_sets_for(account, category_ids).items()
        )
        rows.append(
            f'<label><input type="radio" name="appid" value="{appid}" id="account-{appid}"'
            f"{' checked' if index == 0 else ''}> {escape(account.nick_name)}"
            f'<span class="meta">{appid} · {escape(" · ".join(facts))}</span></label>'
            f'<div class="sets" id="sets-{appid}">授权权限集 · permission sets to grant{checks}</div>'
        )
    body = (
        "<h1>授权给第三方平台 · Authorize the third-party platform</h1>"
        f"<p>Platform <code>{escape(component_appid)}</code> asks to manage an account on your behalf.</p>"
        '<form method="post" action="/cgi-bin/componentloginpage/confirm">'
        f'<input type="hidden" name="component_appid" value="{escape(component_appid)}">'
        f'<input type="hidden" name="pre_auth_code" value="{escape(pre_auth_code)}">'
        f'<input type="hidden" name="redirect_uri" value="{escape(redirect_uri)}">'
        f"<fieldset><legend>选择帐号 · choose an account</legend>{''.join(rows)}</fieldset>"
        '<button type="submit" id="confirm">授权 · Authorize</button>'
        "</form>"
    )
    return _layout("授权 · WeChat sandbox", body)


def error_page(message: str) -> str:
    return _layout(
        "出错了 · WeChat sandbox", f'<h1 class="error">出错了 · error</h1><p class="error">{escape(message)}</p>'
    )


def avatar_svg(seed: str, text: str) -> str:
    hue = sum(seed.encode()) * 37 % 360
    initial = escape((text.strip() or "?")[0].upper())
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
        f'<rect width="64" height="64" rx="8" fill="hsl({hue},55%,55%)"/>'
        '<text x="32" y="42" font-size="30" text-anchor="middle" fill="#fff" '
        f'font-family="sans-serif">{initial}</text></svg>'
    )
