import base64
import pickle
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from wechat.crypto import CryptoError, WXBizMsgCrypt, push_envelope
from wechat.xmlparse import parse_xml

# Vector A: the official open-platform "消息推送" example (docs/wechat.md §8).
A_TOKEN = "AAAAA"
A_KEY = "A" * 43
A_APPID = "wx134c8103faa5a59e"
A_TIMESTAMP = "1715943329"
A_NONCE = "1590219412"
A_MSG_SIGNATURE = "6c12a4205838198b8fa631b3220723bb07f1015c"
A_ENCRYPT = (
    "D7yzvUNAL930rd28wf21s4hvXhz0L6Uit/p2Di6C5DHyYGpEgdBRnKjBec34JwoQXicwaZC7fOVihW80F4VtsdvE//1vr7oAbqjD"
    "v8KenVp+ajKYpJnyQ4zMRhIC+a31fCVOMC03FfzV/QuC94kBP55a+Za3sJgvAn+ZbsNqZI5DkyuzkhQN8OBqCzFhizGmy0xpM0ME"
    "A4agpvE+RuNO1rhHTtuJB5yltw1FiYzecSXJ+y/D2r81VkRn2eYjh2ltsoyfbDR7Is6ookXIFxTfyeNyeHxMeT4KN5WpCDmSbTcU"
    "YrbBUlkGLJ9n/rU8YOywma6G7aTb7KZKOqCxgfoUlYEZPk4FUL/TK7ShriFDMVCLyjQJ15Ob++agDWtcxhfUfe6HIoIpRW8mKNBQ"
    "iY/Jd1svvuskA1wLef1RTtzKfMpagSCX/laZINmdnX4zrF6kIaR9P4xQrWXbsTFHTYe0Mg=="
)
A_PLAINTEXT = (
    b"<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>\n"
    b"<FromUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName>\n"
    b"<CreateTime>1715943329</CreateTime>\n"
    b"<MsgType><![CDATA[event]]></MsgType>\n"
    b"<Event><![CDATA[debug_demo]]></Event>\n"
    b"<debug_str><![CDATA[hello world]]></debug_str>\n"
    b"</xml>"
)
A_REPLY_RANDOM = b"999951349e8ee746"
A_REPLY_MSG = b"<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>"
A_REPLY_TIMESTAMP = "1713424427"
A_REPLY_NONCE = "415670741"
A_REPLY_ENCRYPT = (
    "hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSvPT9t/o11"
    "MI7d6WELwqrGd7jMnV0zv3Zc9Nq7"
)
A_REPLY_SIGNATURE = "03e0812039325c2712ef5f0f980fd14c70d6e307"

# Vector B: wechatpy tests/test_crypto.py (same scheme, the trailing id is a corp id).
B_TOKEN = "123456"
B_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
B_APPID = "wx49f0ab532d5d035a"
B_TIMESTAMP = "1411525903"
B_NONCE = "461056294"
B_MSG_SIGNATURE = "74d92dfeb87ba7c714f89d98870ae5eb62dff26d"
B_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv"
    "283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvk"
    "KR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdg"
    "pkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnT"
    "bcX2e8K9QaNWHp91eBdCRxthuL0="
)

OTHER_KEY = "yguy3495y79o34vod7843933902h9gb2834hgpB90rg"


def crypt_a(**kwargs) -> WXBizMsgCrypt:
    return WXBizMsgCrypt(token=A_TOKEN, encoding_aes_key=A_KEY, appid=A_APPID, **kwargs)


def crypt_b(**kwargs) -> WXBizMsgCrypt:
    return WXBizMsgCrypt(token=B_TOKEN, encoding_aes_key=B_KEY, appid=B_APPID, **kwargs)


def raw_encrypt(key_b64: str, full_plaintext_padded: bytes) -> str:
    """Encrypt bytes as-is (no framing, no padding) to forge malformed messages."""
    key = base64.b64decode(key_b64 + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(full_plaintext_padded) + enc.finalize()).decode()


def frame(msg: bytes, appid: bytes, *, length: int | None = None) -> bytes:
    return b"r" * 16 + struct.pack(">I", len(msg) if length is None else length) + msg + appid


def pad32(data: bytes) -> bytes:
    n = 32 - len(data) % 32
    return data + bytes([n]) * n


# --- Vector A ---------------------------------------------------------------------------------


def test_vector_a_signature_matches_the_official_example():
    assert crypt_a().sign(A_TIMESTAMP, A_NONCE, A_ENCRYPT) == A_MSG_SIGNATURE


def test_vector_a_decrypts_to_the_official_plaintext():
    assert crypt_a().decrypt(A_ENCRYPT) == A_PLAINTEXT


def test_vector_a_decrypt_message_verifies_then_decrypts():
    plain = crypt_a().decrypt_message(
        encrypt=A_ENCRYPT, msg_signature=A_MSG_SIGNATURE, timestamp=A_TIMESTAMP, nonce=A_NONCE
    )
    assert parse_xml(plain)["debug_str"] == "hello world"


def test_vector_a_reply_encryption_is_byte_for_byte_the_official_one():
    assert crypt_a().encrypt(A_REPLY_MSG, random_prefix=A_REPLY_RANDOM) == A_REPLY_ENCRYPT
    reply = crypt_a().encrypt_reply(
        A_REPLY_MSG, timestamp=A_REPLY_TIMESTAMP, nonce=A_REPLY_NONCE, random_prefix=A_REPLY_RANDOM
    )
    assert reply == (
        f"<xml><Encrypt><![CDATA[{A_REPLY_ENCRYPT}]]></Encrypt>"
        f"<MsgSignature><![CDATA[{A_REPLY_SIGNATURE}]]></MsgSignature>"
        f"<TimeStamp>{A_REPLY_TIMESTAMP}</TimeStamp>"
        f"<Nonce><![CDATA[{A_REPLY_NONCE}]]></Nonce></xml>"
    )


def test_reply_parses_back_and_its_signature_verifies():
    crypt = crypt_a()
    fields = parse_xml(crypt.encrypt_reply(b"<xml><a>1</a></xml>", timestamp="1", nonce="n1").encode())
    plain = crypt.decrypt_message(
        encrypt=fields["Encrypt"],
        msg_signature=fields["MsgSignature"],
        timestamp=fields["TimeStamp"],
        nonce=fields["Nonce"],
    )
    assert plain == b"<xml><a>1</a></xml>"


def test_reply_refuses_markup_in_timestamp_or_nonce():
    with pytest.raises(ValueError):
        crypt_a().encrypt_reply(b"x", timestamp="1<x/>", nonce="1")
    with pytest.raises(ValueError):
        crypt_a().encrypt_reply(b"x", timestamp="1", nonce="]]><evil/>")


# --- Vector B ---------------------------------------------------------------------------------


def test_vector_b_signature_matches_wechatpy():
    assert crypt_b().sign(B_TIMESTAMP, B_NONCE, B_ENCRYPT) == B_MSG_SIGNATURE


def test_vector_b_decrypts_to_wechatpys_text_message():
    plain = crypt_b().decrypt_message(
        encrypt=B_ENCRYPT, msg_signature=B_MSG_SIGNATURE, timestamp=B_TIMESTAMP, nonce=B_NONCE
    )
    fields = parse_xml(plain)
    assert fields["Content"] == "test"
    assert fields["FromUserName"] == "messense"


# --- rejections -------------------------------------------------------------------------------


def test_tampered_signature_is_rejected():
    bad = "0" + A_MSG_SIGNATURE[1:]
    with pytest.raises(CryptoError) as exc:
        crypt_a().decrypt_message(encrypt=A_ENCRYPT, msg_signature=bad, timestamp=A_TIMESTAMP, nonce=A_NONCE)
    assert exc.value.code == "bad_signature"


@pytest.mark.parametrize("field", ["timestamp", "nonce", "encrypt"])
def test_signature_covers_timestamp_nonce_and_encrypt(field):
    args = {"msg_signature": A_MSG_SIGNATURE, "timestamp": A_TIMESTAMP, "nonce": A_NONCE, "encrypt": A_ENCRYPT}
    args[field] = args[field][:-2] + "99" if field != "encrypt" else "x" + args[field][1:]
    with pytest.raises(CryptoError) as exc:
        crypt_a().verify_signature(**args)
    assert exc.value.code == "bad_signature"


@pytest.mark.parametrize("sig", ["", "签名", "6C12A4205838198B8FA631B3220723BB07F1015C0"])
def test_odd_signature_strings_are_rejected_without_crashing(sig):
    with pytest.raises(CryptoError) as exc:
        crypt_a().verify_signature(msg_signature=sig, timestamp=A_TIMESTAMP, nonce=A_NONCE, encrypt=A_ENCRYPT)
    assert exc.value.code == "bad_signature"


def test_signature_check_runs_before_decryption():
    # Garbage ciphertext with a wrong signature must fail on the signature, not leak a padding verdict.
    with pytest.raises(CryptoError) as exc:
        crypt_a().decrypt_message(encrypt="AAAA", msg_signature="x", timestamp="1", nonce="2")
    assert exc.value.code == "bad_signature"


def test_message_for_another_appid_is_rejected():
    other = WXBizMsgCrypt(token=A_TOKEN, encoding_aes_key=A_KEY, appid="wxotherotherother1")
    with pytest.raises(CryptoError) as exc:
        other.decrypt(A_ENCRYPT)
    assert exc.value.code == "bad_appid"


def test_appid_that_is_a_prefix_of_the_real_one_is_rejected():
    short = WXBizMsgCrypt(token=A_TOKEN, encoding_aes_key=A_KEY, appid=A_APPID[:-1])
    with pytest.raises(CryptoError) as exc:
        short.decrypt(A_ENCRYPT)
    assert exc.value.code == "bad_appid"


def test_wrong_key_is_rejected():
    wrong = WXBizMsgCrypt(token=A_TOKEN, encoding_aes_key=OTHER_KEY, appid=A_APPID)
    with pytest.raises(CryptoError) as exc:
        wrong.decrypt(A_ENCRYPT)
    assert exc.value.code in {"bad_padding", "bad_length", "bad_appid"}


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(bytes([0]), id="zero-pad"),
        pytest.param(bytes([33]), id="pad-longer-than-a-block"),
        pytest.param(bytes([5, 5, 5, 4, 5]), id="pad-bytes-differ"),
    ],
)
def test_bad_padding_is_rejected(tail):
    body = frame(b"<xml/>", A_APPID.encode())
    plaintext = body + b"z" * (64 - len(body) - len(tail)) + tail
    assert len(plaintext) % 32 == 0
    with pytest.raises(CryptoError) as exc:
        crypt_a().decrypt(raw_encrypt(A_KEY, plaintext))
    assert exc.value.code == "bad_padding"


def test_length_field_beyond_the_plaintext_is_rejected():
    forged = raw_encrypt(A_KEY, pad32(frame(b"<xml/>", A_APPID.encode(), length=10_000)))
    with pytest.raises(CryptoError) as exc:
        crypt_a().decrypt(forged)
    assert exc.value.code == "bad_length"


def test_plaintext_shorter_than_its_header_is_rejected():
    forged = raw_encrypt(A_KEY, pad32(b"short"))
    with pytest.raises(CryptoError) as exc:
        crypt_a().decrypt(forged)
    assert exc.value.code == "bad_length"


@pytest.mark.parametrize("encrypt", [A_ENCRYPT[:-7], A_ENCRYPT[:100], "not base64!!", "", "简体"])
def test_truncated_or_invalid_base64_is_rejected(encrypt):
    with pytest.raises(CryptoError) as exc:
        crypt_a().decrypt(encrypt)
    assert exc.value.code in {"bad_base64", "bad_ciphertext"}


def test_ciphertext_cut_to_whole_base64_but_not_whole_blocks_is_rejected():
    cut = base64.b64encode(base64.b64decode(A_ENCRYPT)[:48]).decode()
    with pytest.raises(CryptoError) as exc:
        crypt_a().decrypt(cut)
    assert exc.value.code == "bad_ciphertext"


def test_ciphertext_missing_its_last_block_fails_padding_or_length():
    cut = base64.b64encode(base64.b64decode(A_ENCRYPT)[:-32]).decode()
    with pytest.raises(CryptoError) as exc:
        crypt_a().decrypt(cut)
    assert exc.value.code in {"bad_padding", "bad_length", "bad_appid"}


# --- rotation ---------------------------------------------------------------------------------


def rotated_crypt() -> WXBizMsgCrypt:
    """Vector A's key has been replaced by OTHER_KEY and kept as the previous one."""
    return WXBizMsgCrypt(token=A_TOKEN, encoding_aes_key=OTHER_KEY, appid=A_APPID, previous_encoding_aes_keys=[A_KEY])


def test_previous_key_is_accepted_during_rotation():
    rotated = rotated_crypt()
    assert rotated.decrypt(A_ENCRYPT) == A_PLAINTEXT


def test_after_rotation_new_messages_use_the_current_key():
    rotated = rotated_crypt()
    encrypted = rotated.encrypt(b"<xml/>")
    assert WXBizMsgCrypt(token=A_TOKEN, encoding_aes_key=OTHER_KEY, appid=A_APPID).decrypt(encrypted) == b"<xml/>"
    with pytest.raises(CryptoError):
        crypt_a().decrypt(encrypted)


def test_rotation_reports_the_most_telling_failure():
    # Encrypted for another appid under the previous key: the answer is bad_appid, not the current key's noise.
    foreign = WXBizMsgCrypt(token=A_TOKEN, encoding_aes_key=A_KEY, appid="wxforeignforeign12").encrypt(b"<xml/>")
    rotated = rotated_crypt()
    with pytest.raises(CryptoError) as exc:
        rotated.decrypt(foreign)
    assert exc.value.code == "bad_appid"


# --- keys and construction --------------------------------------------------------------------


@pytest.mark.parametrize("key", ["A" * 42, "A" * 44, "", "A" * 42 + "=", "A" * 42 + "!", "密" * 43])
def test_malformed_keys_are_refused(key):
    with pytest.raises(CryptoError) as exc:
        WXBizMsgCrypt(token="t", encoding_aes_key=key, appid="wx1")
    assert exc.value.code == "bad_key"
    assert isinstance(exc.value, ValueError)


def test_malformed_previous_key_is_refused():
    with pytest.raises(CryptoError) as exc:
        WXBizMsgCrypt(token="t", encoding_aes_key=A_KEY, appid="wx1", previous_encoding_aes_keys=["short"])
    assert exc.value.code == "bad_key"


def test_previous_keys_given_as_a_bare_string_are_refused():
    with pytest.raises(TypeError):
        WXBizMsgCrypt(
            token="t",
            encoding_aes_key=A_KEY,
            appid="wx1",
            previous_encoding_aes_keys=A_KEY,
        )


@pytest.mark.parametrize("kwargs", [{"token": ""}, {"appid": ""}])
def test_empty_token_or_appid_is_refused(kwargs):
    with pytest.raises(ValueError):
        WXBizMsgCrypt(**{"token": "t", "encoding_aes_key": A_KEY, "appid": "wx1", **kwargs})


def test_random_prefix_must_be_16_bytes():
    with pytest.raises(ValueError):
        crypt_a().encrypt(b"x", random_prefix=b"short")


def test_encryption_is_randomised_by_default():
    crypt = crypt_a()
    one, two = crypt.encrypt(b"<xml/>"), crypt.encrypt(b"<xml/>")
    assert one != two
    assert crypt.decrypt(one) == crypt.decrypt(two) == b"<xml/>"


@pytest.mark.parametrize("size", [0, 1, 11, 12, 13, 44, 45, 1000])
def test_round_trip_over_padding_boundaries(size):
    crypt = crypt_b()
    msg = bytes(range(256)) * 4
    assert crypt.decrypt(crypt.encrypt(msg[:size])) == msg[:size]


def test_repr_and_errors_never_show_key_material():
    crypt = crypt_a()
    assert A_KEY not in repr(crypt)
    assert A_TOKEN not in repr(crypt)
    try:
        crypt.decrypt(raw_encrypt(A_KEY, pad32(b"short")))
    except CryptoError as exc:
        assert A_KEY not in str(exc)


def test_crypto_error_survives_pickling():
    err = pickle.loads(pickle.dumps(CryptoError("bad_appid", "nope")))
    assert err.code == "bad_appid"
    assert str(err) == "bad_appid: nope"


# --- push envelope ----------------------------------------------------------------------------


def test_push_envelope_is_what_wechat_posts_and_parses_back():
    body = push_envelope(appid=A_APPID, encrypt=A_ENCRYPT)
    assert body == f"<xml><AppId><![CDATA[{A_APPID}]]></AppId><Encrypt><![CDATA[{A_ENCRYPT}]]></Encrypt></xml>".encode()
    assert parse_xml(body) == {"AppId": A_APPID, "Encrypt": A_ENCRYPT}


def test_push_envelope_refuses_cdata_terminators():
    with pytest.raises(ValueError):
        push_envelope(appid="wx]]>", encrypt="x")
