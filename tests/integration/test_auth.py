"""Authentication and the Origin check against the real binary (docs/security.md).

Tokens are minted here with Debian's python3-jwt and python3-cryptography, never with Herald's code; the two
forgeries PyJWT refuses to produce (alg "none", HS256 keyed with the RSA public key) are assembled by hand with
hmac/base64. Every refusal is checked end to end: `error` code `unauthorized`, then close 4001.
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import time
import unittest

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from harness import (AsyncHeraldTestCase, HeraldTestCase, RawClient, WSClient, api_publish, build_request,
                     herald_binary, new_key, upgrade_headers)

SECRET = "integration-test-secret-0123456789abcdef-0123456789"
AUDIENCE = "herald-it"
ISSUER = "https://auth.example"
ALL = {"*": ["*"]}


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(sub="alice", ttl=3600, caps=ALL, **extra):
    now = int(time.time())
    c = {"sub": sub, "exp": now + ttl, "aud": AUDIENCE, "iss": ISSUER}
    if caps is not None:
        c["caps"] = caps
    c.update(extra)
    return c


def hs256(payload, secret=SECRET, headers=None):
    return jwt.encode(payload, secret, algorithm="HS256", headers=headers)


def hand_made(header, payload, key=None):
    """header.payload.signature assembled without PyJWT (HMAC-SHA256 with `key`, or an empty signature)."""
    signing_input = b64url(json.dumps(header)) + "." + b64url(json.dumps(payload))
    signature = b""
    if key is not None:
        signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


class TokenServerMixin:
    """One HS256 node (secret from a file, audience and issuer required) shared by a test class."""

    def start_hs_server(self, *extra):
        fd, path = tempfile.mkstemp(prefix="herald-secret-")
        with os.fdopen(fd, "w") as f:
            f.write(SECRET + "\n")
        self.addCleanup(os.unlink, path)
        return self.start_server("--jwt-secret-file", path, "--jwt-audience", AUDIENCE, "--jwt-issuer", ISSUER,
                                 *extra)


class AuthRefusalTest(TokenServerMixin, AsyncHeraldTestCase):
    async def asyncSetUp(self):
        self.server = self.start_hs_server()

    async def expect_refused(self, connect_fields, label):
        c = await self.ws(self.server)
        await c.send_json({"op": "connect", "id": 1, **connect_fields})
        reply = await c.recv_json(what=f"the refusal of {label}")
        self.assertEqual((reply.get("op"), reply.get("id"), reply.get("code")), ("error", 1, "unauthorized"),
                         msg=f"{label}: {reply}")
        code = await c.expect_closed()
        self.assertEqual(code, 4001, msg=f"{label}: close code")
        return reply

    async def test_valid_token_is_admitted(self):
        c = await self.ws(self.server)
        reply = await c.connect(token=hs256(claims()))
        self.assertIs(reply["resumed"], False)
        await c.subscribe("chat:a")

    async def test_every_refusal_is_unauthorized_then_4001(self):
        now = int(time.time())
        cases = {
            "missing token": {},
            "expired": {"token": hs256(claims(ttl=-3600))},
            "not yet valid": {"token": hs256(claims(ttl=7200, nbf=now + 3600))},
            "wrong signature": {"token": hs256(claims(), secret="another-secret-0123456789abcdef-0123456789")},
            "alg none": {"token": hand_made({"alg": "none", "typ": "JWT"}, claims())},
            "alg none with a signature": {"token": hand_made({"alg": "none"}, claims(), SECRET.encode())},
            "wrong aud": {"token": hs256(claims(aud="someone-else"))},
            "wrong iss": {"token": hs256(claims(iss="https://evil.example"))},
            "no sub": {"token": hs256({k: v for k, v in claims().items() if k != "sub"})},
            "no exp": {"token": hs256({k: v for k, v in claims().items() if k != "exp"})},
            "unknown kid": {"token": hs256(claims(), headers={"kid": "other"})},
            "garbage": {"token": "not.a.token"},
        }
        for label, fields in cases.items():
            with self.subTest(label):
                reply = await self.expect_refused(fields, label)
                if "token" in fields:
                    self.assertNotIn(fields["token"][:20], reply["message"], msg="the token is never echoed")
        failures = await self.to_thread(self.server.metric, "herald_auth_failures_total")
        self.assertGreaterEqual(failures, len(cases))
        self.assertEqual(await self.to_thread(self.server.metric, "herald_auth_failures_total",
                                              reason="missing_token"), 1)
        self.assertNotIn(SECRET, self.server.stderr(), msg="the secret is never logged")

    async def test_commands_before_connect_still_need_connect(self):
        c = await self.ws(self.server)
        await c.send_json({"op": "subscribe", "id": 2, "channel": "chat:a"})
        await c.expect(op="error", id=2, code="not_connected")
        await c.ping()


class PublicKeyTest(AsyncHeraldTestCase):
    @classmethod
    def setUpClass(cls):
        cls.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cls.public_pem = cls.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        fd, cls.pem_path = tempfile.mkstemp(prefix="herald-pub-", suffix=".pem")
        with os.fdopen(fd, "wb") as f:
            f.write(cls.public_pem)

    @classmethod
    def tearDownClass(cls):
        os.unlink(cls.pem_path)

    async def asyncSetUp(self):
        self.server = self.start_server("--jwt-public-key", self.pem_path)

    async def test_rs256_is_admitted(self):
        token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 600, "caps": ALL}, self.private_key,
                           algorithm="RS256")
        c = await self.ws(self.server)
        await c.connect(token=token)

    async def test_hs256_signed_with_the_public_key_is_refused(self):
        # Algorithm confusion: a verifier that let the header pick HMAC would key it with the public PEM.
        payload = {"sub": "alice", "exp": int(time.time()) + 600, "caps": ALL}
        for label, key in (("PEM text", self.public_pem), ("PEM without newline", self.public_pem.strip())):
            with self.subTest(label):
                c = await self.ws(self.server)
                await c.send_json({"op": "connect", "id": 1,
                                   "token": hand_made({"alg": "HS256", "typ": "JWT"}, payload, key)})
                await c.expect(op="error", id=1, code="unauthorized")
                self.assertEqual(await c.expect_closed(), 4001)


class CapabilityTest(TokenServerMixin, AsyncHeraldTestCase):
    async def asyncSetUp(self):
        self.server = self.start_hs_server("--default-capabilities", '{"user:{sub}":["*"]}')

    async def publish_own(self, c, channel, data, id):
        """Publishes on a channel `c` is subscribed to: `published` and its own `message`, in either order."""
        await c.send_json({"op": "publish", "id": id, "channel": channel, "data": data})
        got = [await c.recv_json(what=f"published/message on {channel}") for _ in range(2)]
        self.assertEqual(sorted(m["op"] for m in got), ["message", "published"], msg=repr(got))

    async def test_prefix_exact_and_subject_patterns(self):
        caps = {"chat:*": ["subscribe"], "chat:lobby": ["publish", "history"], "user:{sub}": ["*"]}
        c = await self.ws(self.server)
        await c.connect(token=hs256(claims(sub="alice", caps=caps)))
        await c.subscribe("chat:room1", id=2)  # prefix
        await c.subscribe("chat:lobby", id=3)
        await self.publish_own(c, "chat:lobby", {"x": 1}, id=4)  # exact
        refused = [
            ({"op": "publish", "id": 10, "channel": "chat:room1", "data": 1}, "publish without the capability"),
            ({"op": "history", "id": 11, "channel": "chat:room1"}, "history without the capability"),
            ({"op": "subscribe", "id": 12, "channel": "news"}, "no pattern matches"),
            ({"op": "subscribe", "id": 13, "channel": "chat"}, "the prefix needs its colon"),
            ({"op": "subscribe", "id": 14, "channel": "user:bob"}, "another subject's channel"),
            ({"op": "subscribe", "id": 15, "channel": "user:alice2"}, "{sub} is the whole segment"),
        ]
        for command, label in refused:
            with self.subTest(label):
                await c.send_json(command)
                reply = await c.expect(op="error", id=command["id"])
                self.assertEqual(reply["code"], "forbidden", msg=f"{label}: {reply}")
        await c.subscribe("user:alice", id=20)  # {sub} → alice
        await self.publish_own(c, "user:alice", "hi", id=21)
        await c.ping()  # forbidden never closes the connection
        self.assertGreaterEqual(await self.to_thread(self.server.metric, "herald_errors_total", code="forbidden"),
                                len(refused))

    async def test_tokens_without_caps_get_the_default_capabilities(self):
        c = await self.ws(self.server)
        await c.connect(token=hs256(claims(sub="bob", caps=None)))
        await c.subscribe("user:bob")
        await c.send_json({"op": "subscribe", "id": 3, "channel": "chat:a"})
        await c.expect(op="error", id=3, code="forbidden")


class AnonymousTest(TokenServerMixin, AsyncHeraldTestCase):
    async def test_token_less_clients_get_the_anonymous_capabilities(self):
        server = self.start_hs_server("--allow-anonymous", "--anonymous-capabilities",
                                      '{"public:*":["subscribe","history"]}')
        c = await self.ws(server)
        await c.connect()
        await c.subscribe("public:news")
        await c.send_json({"op": "publish", "id": 3, "channel": "public:news", "data": 1})
        await c.expect(op="error", id=3, code="forbidden")
        # A token that fails is still refused: anonymous access is not a fallback for bad credentials.
        bad = await self.ws(server)
        await bad.send_json({"op": "connect", "id": 1, "token": hs256(claims(ttl=-3600))})
        await bad.expect(op="error", id=1, code="unauthorized")
        self.assertEqual(await bad.expect_closed(), 4001)


class RefreshTest(TokenServerMixin, AsyncHeraldTestCase):
    async def asyncSetUp(self):
        self.server = self.start_hs_server("--jwt-refresh-grace", "2", "--jwt-leeway", "0")

    async def test_refresh_in_time_keeps_the_connection_and_applies_the_new_capabilities(self):
        c = await self.ws(self.server)
        await c.connect(token=hs256(claims(ttl=2, caps={"a": ["subscribe"], "b": ["subscribe"]})))
        await c.subscribe("a", id=2)
        await c.subscribe("b", id=3)
        expired = await c.expect(timeout=5, op="error", code="token_expired")
        self.assertNotIn("id", expired)
        new_claims = claims(ttl=600, caps={"a": ["subscribe"], "pub": ["publish"]})
        await c.send_json({"op": "refresh", "id": 9, "token": hs256(new_claims)})
        self.assertEqual(await c.recv_json(what="refreshed"), {"op": "refreshed", "id": 9,
                                                               "expires": new_claims["exp"]})
        self.assertEqual(await c.recv_json(what="unsubscribed b"),
                         {"op": "unsubscribed", "channel": "b", "reason": "forbidden"})
        await asyncio.sleep(2.5)  # past the grace the refresh ended
        await c.publish("pub", 1, id=10)  # the new capability
        p = await self.connected_ws_as("bob")
        await p.publish("a", "still here", id=4)
        await c.expect(op="message", channel="a", serial=1)
        self.assertEqual(await self.to_thread(self.server.metric, "herald_token_events_total", event="refreshed"), 1)

    async def connected_ws_as(self, sub):
        c = await self.ws(self.server)
        await c.connect(token=hs256(claims(sub=sub)))
        return c

    async def test_a_proactive_refresh_before_expiry_is_fine(self):
        c = await self.ws(self.server)
        await c.connect(token=hs256(claims(ttl=2)))
        await c.send_json({"op": "refresh", "id": 5, "token": hs256(claims(ttl=600))})
        await c.expect(op="refreshed", id=5)
        await asyncio.sleep(3)
        await c.expect_silence(0.2)
        await c.ping()

    async def test_no_refresh_in_time_closes_4001(self):
        c = await self.ws(self.server)
        await c.connect(token=hs256(claims(ttl=1)))
        start = time.monotonic()
        await c.expect(timeout=5, op="error", code="token_expired")
        self.assertEqual(await c.expect_closed(timeout=6), 4001)
        self.assertGreaterEqual(time.monotonic() - start, 1.5, msg="the grace (2 s) was given")

    async def test_refresh_for_another_subject_is_refused(self):
        c = await self.ws(self.server)
        await c.connect(token=hs256(claims(sub="alice")))
        await c.send_json({"op": "refresh", "id": 5, "token": hs256(claims(sub="mallory"))})
        await c.expect(op="error", id=5, code="unauthorized")
        self.assertEqual(await c.expect_closed(), 4001)


class SessionSubjectTest(TokenServerMixin, AsyncHeraldTestCase):
    async def test_another_subjects_session_is_never_restored(self):
        server = self.start_hs_server()
        alice = await self.ws(server)
        first = await alice.connect(token=hs256(claims(sub="alice")))
        await alice.subscribe("room")
        await alice.close()
        await asyncio.sleep(0.2)  # the session is saved at disconnect

        mallory = await self.ws(server)
        stolen = await mallory.connect(token=hs256(claims(sub="mallory")), session=first["session"])
        self.assertIs(stolen["resumed"], False, msg=repr(stolen))
        self.assertNotEqual(stolen["session"], first["session"], msg="a fresh session, not alice's")
        await mallory.expect_silence(0.3)  # no `subscribed` for alice's channels

        again = await self.ws(server)
        back = await again.connect(token=hs256(claims(sub="alice")), session=first["session"])
        self.assertIs(back["resumed"], True, msg="the owner still resumes it")
        await again.expect(op="subscribed", channel="room")


class OpenModeTest(HeraldTestCase):
    def test_without_a_key_the_node_warns_and_admits_everyone(self):
        server = self.start_server()
        self.assertRegex(server.stderr(), r"level=warn\b.*event=auth_disabled")
        c = self.raw(server)
        c.handshake()
        reply = c.connect_op(token="anything at all")
        self.assertEqual(reply["op"], "connected")

    def test_help_shows_no_secret(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
        env["HERALD_JWT_SECRET"] = SECRET
        env["HERALD_API_KEY"] = "api-key-from-the-environment-123"
        out = subprocess.run([herald_binary(), "--api-key", "api-key-on-the-command-line", "--help"], env=env,
                             capture_output=True, timeout=10)
        text = (out.stdout + out.stderr).decode()
        self.assertIn("--jwt-secret", text)
        for secret in (SECRET, "api-key-from-the-environment-123", "api-key-on-the-command-line"):
            self.assertNotIn(secret, text)


class ApiKeyTest(HeraldTestCase):
    def test_bearer_api_key(self):
        key = "server-api-key-0123456789"
        server = self.start_server("--api-key", key)
        self.assertEqual(api_publish(server.port, "c", 1).status, 401)
        self.assertEqual(api_publish(server.port, "c", 1, api_key=key[:-1]).status, 401)
        self.assertEqual(api_publish(server.port, "c", 1, api_key=key + "0").status, 401)
        self.assertEqual(api_publish(server.port, "c", 1, api_key=key).status, 200)
        self.assertEqual(server.metric("herald_auth_failures_total", reason="api_key"), 3)
        self.assertNotIn(key, server.stderr())


class OriginTest(HeraldTestCase):
    def upgrade(self, server, origin=None, host=None):
        c = self.raw(server)
        extra = [("Origin", origin)] if origin is not None else []
        headers = upgrade_headers(server.port, key=new_key(), extra=extra)
        if host is not None:
            headers = [(k, host if k == "Host" else v) for k, v in headers]
        return c.request(build_request("GET", "/ws", headers=headers))

    def test_without_a_list_the_origin_must_match_the_host(self):
        server = self.start_server()
        own = f"127.0.0.1:{server.port}"
        self.assertEqual(self.upgrade(server, f"http://{own}").status, 101)
        self.assertEqual(self.upgrade(server, f"https://{own}").status, 101, msg="scheme aside")
        self.assertEqual(self.upgrade(server).status, 101, msg="no Origin: not a browser")
        for origin in ("https://evil.example", f"http://127.0.0.1:{server.port + 1}", "null",
                       f"http://{own}.evil.example"):
            with self.subTest(origin):
                r = self.upgrade(server, origin)
                self.assertEqual(r.status, 403, msg=repr(r))
                self.assertTrue(r.body.strip(), msg="a short body says why")
        self.assertEqual(server.metric("herald_handshake_failures_total", reason="origin"), 4)

    def test_allowed_origins_list(self):
        server = self.start_server("--allowed-origins", "https://app.example.com,https://*.example.org")
        for origin, status in (("https://app.example.com", 101), ("https://a.example.org", 101),
                               ("https://a.b.example.org", 101), ("https://example.org", 403),
                               ("http://app.example.com", 403), ("https://app.example.com:8443", 403),
                               (f"http://127.0.0.1:{server.port}", 403), (None, 101)):
            with self.subTest(origin):
                self.assertEqual(self.upgrade(server, origin).status, status)

    def test_star_allows_any_origin(self):
        server = self.start_server("--allowed-origins", "*")
        self.assertEqual(self.upgrade(server, "https://anything.example").status, 101)

    def test_a_bad_list_fails_the_start(self):
        out = subprocess.run([herald_binary(), "--listen", "127.0.0.1:0", "--allowed-origins", "example.com"],
                             capture_output=True, timeout=10)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn(b"--allowed-origins", out.stderr)


if __name__ == "__main__":
    unittest.main()
