"""Demo accounts, with appids that are the same on every start so a demo script can name them."""

from __future__ import annotations

import hashlib

from .state import State


def demo_appid(key: str) -> str:
    return "wx" + hashlib.sha1(f"kfplatform-sandbox:{key}".encode()).hexdigest()[:16]


# Demo component credentials, used when no flag, no platform setting (`manage.py wechat_sandbox` passes the
# platform's) and no environment variable gives any. The platform's own demo values differ.
DEMO_COMPONENT_APPID = demo_appid("component")
DEMO_COMPONENT_APPSECRET = hashlib.sha1(b"kfplatform-sandbox:secret").hexdigest()
DEMO_COMPONENT_TOKEN = "kfplatformsandboxtoken"
DEMO_COMPONENT_AES_KEY = "kfplatformSandboxDemoEncodingAESKey00000000"  # 43 characters

LOTUS_TEA = demo_appid("certified-subscription")
CORNER_BAKERY = demo_appid("uncertified-subscription")
HARBOR_LOGISTICS = demo_appid("certified-service")
PANDA_PANTRY = demo_appid("mini-program")
MAPLE_BOOKS = demo_appid("kf-not-enabled")

_DAY = 86400


def seed_demo_accounts(state: State) -> None:
    now = int(state.clock())

    state.create_account(
        appid=LOTUS_TEA,
        nick_name="Lotus Tea House 莲花茶馆",
        kind="subscription",
        certified=True,
        kf_enabled=True,
        alias="lotustea",
        principal_name="杭州莲花茶业有限公司",
    )
    state.seed_kf(
        LOTUS_TEA,
        [
            {"kf_account": "alice@lotustea", "kf_nick": "Alice 小艾", "kf_wx": "alice_wx"},
            {
                "kf_account": "bob@lotustea",
                "kf_nick": "Bob 小波",
                "invite_wx": "bob_wx",
                "invite_expire_time": now + 2 * _DAY,
                "invite_status": "waiting",
            },
            {
                "kf_account": "carol@lotustea",
                "kf_nick": "Carol 小卡",
                "invite_wx": "carol_wx",
                "invite_expire_time": now - _DAY,
                "invite_status": "expired",
            },
        ],
    )

    state.create_account(
        appid=CORNER_BAKERY,
        nick_name="Corner Bakery 街角面包",
        kind="subscription",
        certified=False,
        kf_enabled=True,
        alias="cornerbakery",
        principal_name="王小明",
    )
    state.seed_kf(CORNER_BAKERY, [{"kf_account": "help@cornerbakery", "kf_nick": "面包客服", "kf_wx": "baker_wx"}])

    state.create_account(
        appid=HARBOR_LOGISTICS,
        nick_name="Harbor Logistics 港湾物流",
        kind="service",
        certified=True,
        kf_enabled=True,
        alias="harborlogistics",
        principal_name="宁波港湾物流有限公司",
    )
    state.seed_kf(
        HARBOR_LOGISTICS,
        [
            {"kf_account": "dispatch@harborlogistics", "kf_nick": "调度中心", "kf_wx": "dispatch_wx"},
            {"kf_account": "claims@harborlogistics", "kf_nick": "理赔专员", "kf_wx": "claims_wx"},
        ],
    )

    state.create_account(
        appid=PANDA_PANTRY,
        nick_name="Panda Pantry 熊猫食堂",
        kind="mini_program",
        certified=True,
        kf_enabled=True,
        alias="",
        principal_name="成都熊猫食堂餐饮管理有限公司",
    )
    state.seed_kf(PANDA_PANTRY, [{"kf_account": "service@pandapantry", "kf_nick": "熊猫客服", "kf_wx": "panda_wx"}])

    state.create_account(
        appid=MAPLE_BOOKS,
        nick_name="Maple Books 枫叶书店",
        kind="subscription",
        certified=True,
        kf_enabled=False,
        alias="maplebooks",
        principal_name="北京枫叶书店有限公司",
    )
