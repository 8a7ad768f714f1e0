import pytest

from wechat.xmlparse import XMLError, parse_xml

TICKET_PUSH = b"""<xml>
<AppId>some_appid</AppId>
<CreateTime>1413192605</CreateTime>
<InfoType>component_verify_ticket</InfoType>
<ComponentVerifyTicket>some_verify_ticket</ComponentVerifyTicket>
</xml>"""


def test_ticket_push_parses_to_a_flat_dict():
    assert parse_xml(TICKET_PUSH) == {
        "AppId": "some_appid",
        "CreateTime": "1413192605",
        "InfoType": "component_verify_ticket",
        "ComponentVerifyTicket": "some_verify_ticket",
    }


def test_cdata_is_read_verbatim_including_markup_and_whitespace():
    body = b"<xml><Content><![CDATA[ <b>hi</b> & bye ]]></Content><ToUserName><![CDATA[gh_1]]></ToUserName></xml>"
    assert parse_xml(body) == {"Content": " <b>hi</b> & bye ", "ToUserName": "gh_1"}


def test_empty_elements_read_as_empty_strings():
    assert parse_xml(b"<xml><A></A><B/><C><![CDATA[]]></C></xml>") == {"A": "", "B": "", "C": ""}


def test_non_ascii_utf8_text_is_kept():
    assert parse_xml("<xml><Nick>客服1</Nick></xml>".encode()) == {"Nick": "客服1"}


def test_utf8_bom_and_xml_declaration_are_accepted():
    assert parse_xml(b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?><xml><A>1</A></xml>') == {"A": "1"}


def test_declared_foreign_encoding_cannot_change_how_bytes_are_read():
    body = '<?xml version="1.0" encoding="latin-1"?><xml><A>é</A></xml>'.encode()
    assert parse_xml(body) == {"A": "é"}


def test_nested_elements_are_not_flattened_into_the_result():
    assert parse_xml(b"<xml><A>1</A><Outer><Inner>2</Inner></Outer></xml>") == {"A": "1", "Outer": ""}


def test_comments_and_attributes_are_ignored():
    assert parse_xml(b'<xml><!-- c --><A x="1">v</A></xml>') == {"A": "v"}


def test_billion_laughs_is_refused():
    body = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<xml><A>&lol4;</A></xml>"""
    with pytest.raises(XMLError):
        parse_xml(body)


def test_external_entity_is_refused():
    body = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><A>&xxe;</A></xml>"""
    with pytest.raises(XMLError):
        parse_xml(body)


def test_any_doctype_is_refused():
    with pytest.raises(XMLError):
        parse_xml(b'<!DOCTYPE xml SYSTEM "http://example.invalid/x.dtd"><xml><A>1</A></xml>')
    with pytest.raises(XMLError):
        parse_xml(b"<!DOCTYPE xml><xml><A>1</A></xml>")


def test_undefined_entity_is_refused():
    with pytest.raises(XMLError):
        parse_xml(b"<xml><A>&nope;</A></xml>")


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><A>1</A>",  # truncated
        b"<xml><A>1</B></xml>",
        b"not xml at all",
        b'{"errcode": 0}',
        b"<xml></xml><xml></xml>",
        b"",
        b"   \n",
        b"<html><body>502 Bad Gateway</body></html>",
    ],
)
def test_malformed_or_foreign_documents_are_refused(body):
    with pytest.raises(XMLError):
        parse_xml(body)


def test_root_must_be_xml():
    with pytest.raises(XMLError):
        parse_xml(b"<root><A>1</A></root>")


def test_non_utf8_bytes_are_refused():
    with pytest.raises(XMLError):
        parse_xml("<xml><A>客服</A></xml>".encode("gbk"))
    with pytest.raises(XMLError):
        parse_xml(b"\xff\xfe<\x00x\x00")


def test_duplicate_fields_are_refused():
    with pytest.raises(XMLError):
        parse_xml(b"<xml><InfoType>authorized</InfoType><InfoType>unauthorized</InfoType></xml>")


def test_oversized_document_is_refused_before_parsing():
    body = b"<xml><A>" + b"a" * (64 * 1024) + b"</A></xml>"
    with pytest.raises(XMLError):
        parse_xml(body)
    assert parse_xml(body, max_bytes=len(body)) == {"A": "a" * (64 * 1024)}


def test_xml_error_is_a_value_error():
    assert issubclass(XMLError, ValueError)


def test_str_input_is_a_programming_error():
    with pytest.raises(TypeError):
        parse_xml("<xml/>")  # type: ignore[arg-type]
