#!/usr/bin/env python3
"""Writes the hand-made seed corpus under tests/fuzz/corpus/<target>/ (the files are committed; rerun after editing).

Frame and HTTP seeds start with the two control bytes the targets read first (split shape, options); command seeds
are the JSON text alone. Seed names say what they hold. Inputs the fuzzer found are added separately
(see README.md) and are not touched here, except that files this script wrote before are replaced.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
RFC_MASK = bytes([0x37, 0xFA, 0x21, 0x3D])  # the key of RFC 6455 5.7

# Frame target options: bits 0-2 pick max_message_size (0,1,16,125,1000,4096,64K,1M), bits 3-7 the Stop mask.
LIMIT_64K = 6
LIMIT_16 = 2


def write(target, name, data):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------------------------------- frames
def frame(first, payload, mask=RFC_MASK, masked=True, force=None):
    n = len(payload)
    out = bytes([first])
    bit = 0x80 if masked else 0
    if force is None and n < 126:
        out += bytes([bit | n])
    elif force == 16 or (force is None and n <= 0xFFFF):
        out += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        out += bytes([bit | 127]) + struct.pack(">Q", n)
    if masked:
        out += mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    else:
        out += payload
    return out


def text(p, **kw): return frame(0x81, p, **kw)
def text_first(p): return frame(0x01, p)
def cont(p): return frame(0x00, p)
def cont_final(p): return frame(0x80, p)
def ping(p): return frame(0x89, p)
def pong(p): return frame(0x8A, p)
def close(code=None, reason=b""): return frame(0x88, b"" if code is None else struct.pack(">H", code) + reason)


def frames():
    seeds = {
        # RFC 6455 5.7, as written (client frames must be masked, so the unmasked ones are errors here).
        "rfc_unmasked_hello": bytes([0x81, 0x05]) + b"Hello",
        "rfc_masked_hello": bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]),
        "rfc_unmasked_fragmented_hello": bytes([0x01, 0x03]) + b"Hel" + bytes([0x80, 0x02]) + b"lo",
        "rfc_unmasked_ping": bytes([0x89, 0x05]) + b"Hello",
        "rfc_masked_pong": bytes([0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]),
        "rfc_binary_256": bytes([0x82, 0x7E, 0x01, 0x00]) + bytes(256),
        "rfc_binary_64k_header": bytes([0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]) + b"xxxx",
        # Valid client traffic.
        "masked_fragmented_hello": text_first(b"Hel") + cont_final(b"lo"),
        "ping_between_fragments": text_first(b"Hel") + ping(b"x") + cont_final(b"lo"),
        "pong_ping_between_fragments": text_first(b"a") + pong(b"p") + cont(b"b") + ping(b"q") + cont_final(b"c"),
        "empty_fragments": text_first(b"") + cont(b"") + cont_final(b""),
        "utf8_split_across_fragments": text_first("caf\u00e9".encode()[:4]) + cont_final("caf\u00e9".encode()[4:]),
        "utf8_4byte_three_fragments": text_first(b"\xF0\x9F") + cont(b"\x98") + cont_final(b"\x80!"),
        "text_126_len16": text(bytes(ord("a") + i % 26 for i in range(126))),
        "text_300_len16": text(bytes(ord("a") + i % 26 for i in range(300))),
        "text_nonminimal_len16": text(b"Hello", force=16),
        "text_nonminimal_len64": text(b"Hello", force=64),
        "ping_125": ping(b"p" * 125),
        "empty_ping_pong": ping(b"") + pong(b""),
        "back_to_back": text(b"one") + text(b"two") + text(b"three"),
        "herald_session": text(b'{"op":"connect","id":1}') + text(b'{"op":"subscribe","id":2,"channel":"chat:room1"}')
        + ping(b"hb") + text(b'{"op":"publish","id":3,"channel":"chat:room1","data":{"text":"hello"}}'),
        # Close frames.
        "close_empty": close(),
        "close_1000_bye": close(1000, b"bye"),
        "close_1001": close(1001),
        "close_4999_utf8_reason": close(4999, "\u00e9t\u00e9".encode()),
        "close_between_fragments": text_first(b"a") + close(1000),
        "close_then_garbage": close(1000) + b"\xFF\xFF\xFF",
        # Violations.
        "close_1005": close(1005),
        "close_999": close(999),
        "close_one_byte": frame(0x88, b"\x03"),
        "close_bad_utf8_reason": close(1000, b"\xC3"),
        "rsv1_set": frame(0xC1, b"x"),
        "reserved_opcode_3": frame(0x83, b"x"),
        "reserved_opcode_b": frame(0x8B, b"x"),
        "fragmented_ping": frame(0x09, b"x"),
        "ping_126": ping(b"p" * 126),
        "continuation_without_message": cont_final(b"x"),
        "text_inside_message": text_first(b"a") + text(b"b"),
        "len64_high_bit": bytes([0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0]) + RFC_MASK,
        "invalid_utf8": text(b"ab\xC0\xAFcd"),
        "surrogate_utf8": text(b"\xED\xA0\x80"),
        "utf8_truncated_at_end": text_first(b"ok") + cont_final(b"\xE2\x82"),
        "over_64k_len": bytes([0x81, 0xFF, 0, 0, 0, 0, 0, 1, 0, 1]) + RFC_MASK,
    }
    for index, (name, stream) in enumerate(sorted(seeds.items())):
        # Spread the seeds over the four split shapes; a few with Stop after every event.
        split = index % 4 | (index << 2) & 0xFC
        options = LIMIT_64K | ((0x1F << 3) if index % 5 == 0 else 0)
        write("frame_parser", name, bytes([split & 0xFF, options]) + stream)
    # The size limit, tested with a 16-byte max_message_size.
    write("frame_parser", "limit16_fragmented_over", bytes([1, LIMIT_16]) + text_first(b"0123456789") + cont_final(b"abcdefg"))
    write("frame_parser", "limit16_exact", bytes([2, LIMIT_16]) + text(b"0123456789abcdef"))


# ---------------------------------------------------------------------------------------------------- http
HANDSHAKE = (b"GET /ws HTTP/1.1\r\nHost: herald.example:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
             b"Sec-WebSocket-Protocol: herald.v1.json\r\n\r\n")


PUBLISH_BODY = b'{"channel":"news","data":{"title":"hello"},"key":"k"}'


def http():
    h = HANDSHAKE
    seeds = {
        "handshake_doc": h,
        "handshake_then_frame": h + text(b'{"op":"ping","id":1}'),
        "handshake_no_subprotocol": h.replace(b"Sec-WebSocket-Protocol: herald.v1.json\r\n", b""),
        "handshake_several_subprotocols": h.replace(b"herald.v1.json", b"chat, herald.v1.json, x"),
        "handshake_other_subprotocol": h.replace(b"herald.v1.json", b"chat"),
        "handshake_keep_alive_upgrade": h.replace(b"Connection: Upgrade", b"Connection: keep-alive, Upgrade"),
        "handshake_version_8": h.replace(b"Version: 13", b"Version: 8"),
        "handshake_no_key": h.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b""),
        "handshake_short_key": h.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"dGhlIHNhbXBsZQ=="),
        "handshake_http10": h.replace(b"HTTP/1.1", b"HTTP/1.0"),
        "handshake_post": h.replace(b"GET", b"POST"),
        "handshake_wrong_path": h.replace(b"/ws", b"/chat"),
        "handshake_absolute_form": h.replace(b"GET /ws", b"GET http://herald.example:8080/ws?x=1"),
        "handshake_bare_lf": h.replace(b"\r\n", b"\n"),
        "handshake_leading_empty_line": b"\r\n" + h,
        "handshake_no_host": h.replace(b"Host: herald.example:8080\r\n", b""),
        "healthz": b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "readyz": b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
        "metrics": b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
        "api_publish": b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer k3y\r\nContent-Length: %d\r\n\r\n%s" % (len(PUBLISH_BODY), PUBLISH_BODY),
        "api_history": b"GET /api/history?channel=chat%3Aroom1&since=3&limit=10+1&x HTTP/1.1\r\nHost: x\r\n\r\n",
        "api_history_bad_escape": b"GET /api/history?channel=%zz&since=%4 HTTP/1.1\r\nHost: x\r\n\r\n",
        "options_asterisk": b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        "content_length_list": b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\n{}",
        "content_length_conflict": b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        "content_length_overflow": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "chunked": b"POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        "te_and_cl": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nContent-Length: 1\r\n\r\nx",
        "obs_fold": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  continued\r\n\r\n",
        "bare_cr": b"GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n",
        "two_hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "http2": b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        "http09_style": b"GET /\r\n\r\n",
        "bad_method": b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
        "control_in_value": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
        "pipelined": b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
    }
    for index, (name, stream) in enumerate(sorted(seeds.items())):
        write("http_request", name, bytes([(index % 4) | (index << 2) & 0xFC, 0]) + stream)
    # Small limits (options: head 32/200 bytes, 0-4 header fields, body 0/10 bytes) to reach 431 and 413.
    write("http_request", "limits_head_32", bytes([1, 0x01]) + HANDSHAKE)
    write("http_request", "limits_headers_1", bytes([2, 0x02 | (2 << 2)]) + HANDSHAKE)
    write("http_request", "limits_body_10", bytes([3, 0x03 | (2 << 4)]) + seeds["api_publish"])


# ---------------------------------------------------------------------------------------------------- commands
def commands():
    seeds = {
        # Every command shape of docs/protocol.md section 4.
        "connect_full": '{"op":"connect","id":1,"token":"eyJhbGciOiJIUzI1NiJ9.e30.x","session":"3f2a",'
        '"positions":{"chat:room1":{"serial":41,"epoch":"k3j9"}}}',
        "connect_min": '{"op":"connect"}',
        "subscribe": '{"op":"subscribe","id":2,"channel":"chat:room1","since":{"serial":41,"epoch":"k3j9"}}',
        "subscribe_plain": '{"op":"subscribe","id":4,"channel":"chat:room1"}',
        "unsubscribe": '{"op":"unsubscribe","id":3,"channel":"chat:room1"}',
        "publish": '{"op":"publish","id":4,"channel":"chat:room1","data":{"text":"hello"},"key":"msg-7f1c"}',
        "publish_null": '{"op":"publish","channel":"a","data":null}',
        "publish_numbers": '{"op":"publish","channel":"a","data":[1E2,1.50,-0.0,18446744073709551616,1e400,-5]}',
        "publish_unicode": '{"op":"publish","channel":"a","data":"\\u00e9\\ud83d\\ude00 \u00e9"}',
        "history": '{"op":"history","id":5,"channel":"chat:room1","since":41,"limit":10}',
        "history_float_limit": '{"op":"history","channel":"c","limit":7.0,"since":1e3}',
        "ping": '{"op":"ping","id":6}',
        "ping_no_id": '{"op":"ping"}',
        "refresh": '{"op":"refresh","id":7,"token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"}',
        "refresh_empty_token": '{"op":"refresh","token":""}',
        # Ids and numbers (section 2).
        "id_negative": '{"op":"ping","id":-3}',
        "id_float_integral": '{"op":"ping","id":7.0}',
        "id_string": '{"op":"ping","id":"7"}',
        "id_fraction": '{"op":"ping","id":1.5}',
        "id_null": '{"op":"ping","id":null}',
        "id_too_big": '{"op":"ping","id":9223372036854775808}',
        "id_int64_min": '{"op":"ping","id":-9223372036854775808}',
        "duplicate_key": '{"op":"ping","op":"connect","id":1,"id":2}',
        # Faults.
        "not_json": '{"op":"ping",',
        "not_object": '["ping"]',
        "op_missing": '{"id":1}',
        "op_not_string": '{"op":1}',
        "unknown_op": '{"op":"Subscribe","id":9}',
        "invalid_channel": '{"op":"subscribe","id":7,"channel":"bad channel"}',
        "channel_too_long": '{"op":"subscribe","channel":"' + "a" * 256 + '"}',
        "position_key_invalid": '{"op":"connect","positions":{"bad key":{"serial":1,"epoch":"e"}}}',
        "position_no_epoch": '{"op":"connect","positions":{"a":{"serial":1}}}',
        "since_not_object": '{"op":"subscribe","channel":"a","since":41}',
        "key_empty": '{"op":"publish","channel":"a","data":1,"key":""}',
        "session_too_long": '{"op":"connect","session":"' + "s" * 129 + '"}',
        "token_null": '{"op":"connect","token":null}',
        "limit_negative": '{"op":"history","channel":"a","limit":-1}',
        "data_missing": '{"op":"publish","channel":"a"}',
        "nested_64": '{"op":"publish","channel":"a","data":' + "[" * 63 + "]" * 63 + "}",
        "nested_65": '{"op":"publish","channel":"a","data":' + "[" * 64 + "]" * 64 + "}",
        "brackets_in_string": '{"op":"publish","channel":"a","data":"[[[[{{{{\\"]]"}',
        "invalid_utf8": b'{"op":"publish","channel":"a","data":"\xC0\xAF"}',
        "long_unknown_op": '{"op":"' + "\u00e9" * 40 + '"}',
    }
    for name, text_ in sorted(seeds.items()):
        write("command_decoder", name, text_ if isinstance(text_, bytes) else text_.encode())


# ---------------------------------------------------------------------------------------------------- jwt
# The fixed test keys of jwt_fuzz.cpp; jwt_keys/ holds the private halves (test-only keys, never configure them).
JWT_SECRET = b"herald-fuzz-hs-secret-0123456789abcdef"
NOW = 1700000000
FAR = 4102444800  # 2100-01-01


def b64url(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def jwt_token(header, claims, alg, secret=JWT_SECRET):
    import hashlib
    import hmac
    import json
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    c = claims if isinstance(claims, bytes) else json.dumps(claims, separators=(",", ":")).encode()
    signing_input = b64url(h) + b"." + b64url(c)
    digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
    if alg.startswith("HS"):
        sig = hmac.new(secret, signing_input, getattr(hashlib, "sha" + alg[2:])).digest()
    elif alg.startswith("RS"):
        with open(os.path.join(HERE, "jwt_keys", "rsa_private.pem"), "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        sig = key.sign(signing_input, padding.PKCS1v15(), digest)
    else:
        with open(os.path.join(HERE, "jwt_keys", "ec_private.pem"), "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        r, s_ = decode_dss_signature(key.sign(signing_input, ec.ECDSA(digest)))
        sig = r.to_bytes(32, "big") + s_.to_bytes(32, "big")
    return signing_input + b"." + b64url(sig)


def jwt():
    # Control bytes: mode (0 raw token, 1 sign here with the secret, 2 sign with the RSA PEM, 3 capabilities),
    # keys << 2 (0 HS, 1 RSA, 2 EC, 3 HS+RSA with kid k1), HMAC << 4, now << 6 (0: 1700000000); policy byte:
    # 1 audience "herald", 2 issuer "https://issuer.example", leeway << 2.
    HS, RSA, EC, BOTH = 0 << 2, 1 << 2, 2 << 2, 3 << 2
    ok = {"sub": "alice", "exp": FAR, "iat": NOW - 10}
    caps = {"chat:*": ["subscribe", "history"], "user.{sub}.*": ["*"], "news": ["publish"]}
    raw = {
        "hs256": (HS, 0, jwt_token({"alg": "HS256", "typ": "JWT"}, ok, "HS256")),
        "hs384": (HS, 0, jwt_token({"alg": "HS384"}, ok, "HS384")),
        "hs512": (HS, 0, jwt_token({"alg": "HS512"}, ok, "HS512")),
        "hs256_kid": (BOTH, 0, jwt_token({"alg": "HS256", "kid": "k1"}, ok, "HS256")),
        "hs256_wrong_kid": (BOTH, 0, jwt_token({"alg": "HS256", "kid": "k2"}, ok, "HS256")),
        "hs256_aud_iss": (HS, 3, jwt_token({"alg": "HS256"}, dict(ok, aud=["x", "herald"], iss="https://issuer.example"), "HS256")),
        "hs256_wrong_aud": (HS, 1, jwt_token({"alg": "HS256"}, dict(ok, aud="other"), "HS256")),
        "hs256_caps": (HS, 0, jwt_token({"alg": "HS256"}, dict(ok, caps=caps), "HS256")),
        "hs256_bad_caps": (HS, 0, jwt_token({"alg": "HS256"}, dict(ok, caps={"a*b": ["subscribe"]}), "HS256")),
        "hs256_expired": (HS, 0, jwt_token({"alg": "HS256"}, dict(ok, exp=NOW - 31), "HS256")),
        "hs256_nbf_future": (HS, 0, jwt_token({"alg": "HS256"}, dict(ok, nbf=NOW + 60), "HS256")),
        "hs256_iat_future": (HS, 0, jwt_token({"alg": "HS256"}, dict(ok, iat=NOW + 60), "HS256")),
        "hs256_float_exp": (HS, 0, jwt_token({"alg": "HS256"}, dict(ok, exp=1.7e9 + 0.5), "HS256")),
        "hs256_no_sub": (HS, 0, jwt_token({"alg": "HS256"}, {"exp": FAR}, "HS256")),
        "hs256_no_exp": (HS, 0, jwt_token({"alg": "HS256"}, {"sub": "alice"}, "HS256")),
        "hs256_crit": (HS, 0, jwt_token({"alg": "HS256", "crit": ["exp"]}, ok, "HS256")),
        "hs256_bad_sig": (HS, 0, jwt_token({"alg": "HS256"}, ok, "HS256", secret=b"x" * 32)),
        "alg_none": (HS, 0, b64url(b'{"alg":"none"}') + b"." + b64url(b'{"sub":"a","exp":4102444800}') + b"."),
        "rs256": (RSA, 0, jwt_token({"alg": "RS256", "typ": "JWT"}, dict(ok, caps=caps), "RS256")),
        "rs384": (RSA, 0, jwt_token({"alg": "RS384"}, ok, "RS384")),
        "rs512": (RSA, 0, jwt_token({"alg": "RS512"}, ok, "RS512")),
        "rs256_kid_both": (BOTH, 0, jwt_token({"alg": "RS256", "kid": "k1"}, ok, "RS256")),
        "rs256_against_hs": (HS, 0, jwt_token({"alg": "RS256"}, ok, "RS256")),
        "es256": (EC, 0, jwt_token({"alg": "ES256"}, ok, "ES256")),
        "es256_against_rsa": (RSA, 0, jwt_token({"alg": "ES256"}, ok, "ES256")),
        "two_segments": (HS, 0, b"eyJhbGciOiJIUzI1NiJ9.e30"),
        "four_segments": (HS, 0, b"a.b.c.d"),
        "padded": (HS, 0, jwt_token({"alg": "HS256"}, ok, "HS256") + b"=="),
    }
    with open(os.path.join(HERE, "jwt_keys", "rsa_public.pem"), "rb") as f:
        rsa_pem = f.read()
    raw["hs256_keyed_with_rsa_pem"] = (RSA, 0, jwt_token({"alg": "HS256"}, ok, "HS256", secret=rsa_pem))
    for name, (keys, policy, token) in sorted(raw.items()):
        write("jwt", "token_" + name, bytes([0 | keys, policy]) + token)

    signed = {  # mode 1: "<header>\n<claims>", signed by the target with the secret
        "ok": (0 << 4, 0, b'{"alg":"HS256","typ":"JWT"}\n{"sub":"alice","exp":4102444800,"nbf":1699999990}'),
        "hs512": (2 << 4, 0, b'{"alg":"HS512"}\n{"sub":"bob","exp":1.7e9,"iat":1.69e9}'),
        "aud_array": (0, 3, b'{"alg":"HS256"}\n{"sub":"a","exp":4102444800,"aud":["herald"],"iss":"https://issuer.example"}'),
        "caps": (0, 0, b'{"alg":"HS256"}\n{"sub":"alice","exp":4102444800,"caps":{"user.{sub}":["subscribe"],"*":["history"]}}'),
        "huge_numbers": (0, 12, b'{"alg":"HS256"}\n{"sub":"a","exp":1e300,"nbf":-1e300,"iat":18446744073709551615}'),
        "long_sub": (0, 0, b'{"alg":"HS256"}\n{"sub":"' + b"s" * 257 + b'","exp":4102444800}'),
    }
    for name, (hmac_bits, policy, text_) in sorted(signed.items()):
        write("jwt", "signed_" + name, bytes([1 | HS | hmac_bits, policy]) + text_)
    write("jwt", "confusion_rsa_pem", bytes([2 | RSA, 0]) + b'{"alg":"HS256"}\n{"sub":"a","exp":4102444800}')
    write("jwt", "confusion_ec_pem_both", bytes([2 | BOTH | (1 << 4), 0]) + b'{"alg":"HS384"}\n{"sub":"a","exp":4102444800}')

    capabilities = {
        "doc": b'{"chat:*":["subscribe","history"],"user.{sub}.*":["*"],"news":["publish"]}',
        "all": b'{"*":["*"]}',
        "empty": b"{}",
        "no_ops": b'{"a":[]}',
        "star_inside": b'{"a*b":["subscribe"]}',
        "unknown_op": b'{"a":["read"]}',
        "not_array": b'{"a":"subscribe"}',
        "empty_pattern": b'{"":["*"]}',
        "two_subs": b'{"{sub}.{sub}":["*"],"{sub}*":["publish"]}',
        "brace": b'{"{su}":["*"]}',
        "not_object": b'["a"]',
    }
    for name, text_ in sorted(capabilities.items()):
        write("jwt", "caps_" + name, bytes([3, 0]) + text_)


def main():
    targets = sys.argv[1:] or ["frame_parser", "http_request", "command_decoder", "jwt"]
    if "frame_parser" in targets:
        frames()
    if "http_request" in targets:
        http()
    if "command_decoder" in targets:
        commands()
    if "jwt" in targets:
        jwt()


if __name__ == "__main__":
    main()
