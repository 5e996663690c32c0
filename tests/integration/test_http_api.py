"""HTTP endpoints on the WebSocket port: health, readiness, metrics, /api/publish, /api/history, API key."""
import asyncio
import json
import re
import socket
import struct
import time
import unittest

from harness import (METRIC_TYPES, AsyncHeraldTestCase, HeraldTestCase, RawClient, api_publish, build_request,
                     http_request, new_key, upgrade_headers)


class HttpCase:
    def check_common(self, r, what):
        """Every response has Content-Length (matching the body) and Connection: close."""
        self.assertEqual(r.header("content-length"), str(len(r.body)), msg=f"{what}: Content-Length; {r!r}")
        self.assertEqual((r.header("connection") or "").lower(), "close", msg=f"{what}: Connection: close; {r!r}")

    def get(self, path, **kw):
        r = http_request(self.server.port, "GET", path, **kw)
        self.check_common(r, f"GET {path}")
        return r

    def assert_error(self, r, status, code, what):
        self.assertEqual(r.status, status, msg=f"{what}: expected {status} {code}, got {r!r}")
        self.assertIn("application/json", r.header("content-type") or "", msg=f"{what}: error content type; {r!r}")
        body = r.json()
        self.assertEqual(body.get("code"), code, msg=f"{what}: error body {body}")
        self.assertIsInstance(body.get("message"), str, msg=f"{what}: error body {body}")
        self.check_common(r, what)


class EndpointsTest(HttpCase, HeraldTestCase):
    def setUp(self):
        self.server = self.start_server("--max-message-size", "2048")

    def test_healthz(self):
        r = self.get("/healthz")
        self.assertEqual((r.status, r.body), (200, b"ok\n"), msg=repr(r))
        self.assertTrue((r.header("content-type") or "").startswith("text/plain"), msg=repr(r))

    def test_readyz(self):
        r = self.get("/readyz")
        self.assertEqual((r.status, r.body), (200, b"ready\n"), msg=repr(r))

    def test_unknown_path_404(self):
        for path in ("/nope", "/api/nope", "/healthz/x", "/sdk/nope.js", "/demo/nope.js", "/demo/a/b"):
            with self.subTest(path=path):
                r = self.get(path)
                self.assertEqual(r.status, 404, msg=f"GET {path}: {r!r}")

    def test_root_redirects_to_the_demo(self):
        r = self.get("/")
        self.assertEqual((r.status, r.header("Location")), (302, "/demo/"), msg=f"GET /: {r!r}")

    def test_wrong_method_405_with_allow(self):
        for method, path, allowed in (("POST", "/healthz", "GET"), ("POST", "/readyz", "GET"),
                                      ("PUT", "/metrics", "GET"), ("GET", "/api/publish", "POST"),
                                      ("DELETE", "/api/history", "GET")):
            with self.subTest(method=method, path=path):
                r = http_request(self.server.port, method, path, body=b"" if method != "GET" else None)
                self.assertEqual(r.status, 405, msg=f"{method} {path}: {r!r}")
                self.assertIn(allowed, r.header("allow") or "", msg=f"{method} {path}: Allow header; {r!r}")
                self.check_common(r, f"{method} {path}")

    def test_publish_ok(self):
        r = api_publish(self.server.port, "api.c", {"x": [1, 2]})
        self.assertEqual(r.status, 200, msg=repr(r))
        self.assertIn("application/json", r.header("content-type") or "", msg=repr(r))
        body = r.json()
        self.assertEqual(body, {"channel": "api.c", "serial": 1, "epoch": body.get("epoch"), "duplicate": False},
                         msg=f"publish reply {body}")
        self.assertIsInstance(body["epoch"], str)
        r2 = api_publish(self.server.port, "api.c", "second")
        self.assertEqual(r2.json()["serial"], 2, msg=repr(r2))
        self.check_common(r, "POST /api/publish")

    def test_publish_errors(self):
        port = self.server.port
        post = lambda body: http_request(port, "POST", "/api/publish", body=body,
                                         headers={"Content-Type": "application/json"})
        self.assert_error(post(b"{not json"), 400, "bad_request", "invalid JSON body")
        self.assert_error(post(b"[1,2]"), 400, "bad_request", "array body")
        self.assert_error(post(b""), 400, "bad_request", "empty body")
        self.assert_error(post({"data": 1}), 400, "bad_request", "missing channel")
        self.assert_error(post({"channel": 5, "data": 1}), 400, "bad_request", "channel a number")
        self.assert_error(post({"channel": "c"}), 400, "bad_request", "missing data")
        self.assert_error(post({"channel": "bad channel", "data": 1}), 400, "invalid_channel", "space in channel")
        self.assert_error(post({"channel": "", "data": 1}), 400, "invalid_channel", "empty channel")
        self.assert_error(post({"channel": "x" * 256, "data": 1}), 400, "invalid_channel", "256-char channel")

    def test_publish_size_limit(self):
        def body_of(size):
            base = json.dumps({"channel": "big", "data": ""})
            return json.dumps({"channel": "big", "data": "a" * (size - len(base))}).encode()
        ok = http_request(self.server.port, "POST", "/api/publish", body=body_of(2048))
        self.assertEqual(ok.status, 200, msg=f"2048-byte body with --max-message-size 2048: {ok!r}")
        r = http_request(self.server.port, "POST", "/api/publish", body=body_of(3000))
        self.assertEqual(r.status, 413, msg=f"3000-byte body with --max-message-size 2048: {r!r}")
        self.check_common(r, "413")
        r = http_request(self.server.port, "POST", "/api/publish", body=body_of(100_000))
        self.assertEqual(r.status, 413, msg=f"100 000-byte body: {r!r}")

    def test_history(self):
        for i in range(1, 8):
            api_publish(self.server.port, "api.h", {"i": i})
        r = self.get("/api/history?channel=api.h")
        self.assertEqual(r.status, 200, msg=repr(r))
        body = r.json()
        self.assertEqual(set(body), {"channel", "epoch", "serial", "messages"}, msg=repr(body))
        self.assertEqual((body["channel"], body["serial"]), ("api.h", 7))
        self.assertEqual(body["messages"], [{"serial": i, "data": {"i": i}} for i in range(1, 8)])
        r = self.get("/api/history?channel=api.h&since=3&limit=2")
        self.assertEqual([m["serial"] for m in r.json()["messages"]], [4, 5], msg=repr(r))
        r = self.get("/api/history?channel=api.h&limit=2")
        self.assertEqual([m["serial"] for m in r.json()["messages"]], [6, 7], msg=repr(r))
        self.assert_error(self.get("/api/history"), 400, "bad_request", "history without channel")
        self.assert_error(self.get("/api/history?channel=a%20b"), 400, "invalid_channel", "history of 'a b'")
        self.assert_error(self.get("/api/history?channel=api.h&since=abc"), 400, "bad_request", "since=abc")
        self.assert_error(self.get("/api/history?channel=api.h&limit=-1"), 400, "bad_request", "limit=-1")

    def test_metrics_names_and_types(self):
        # Exercise the labelled families so they have samples.
        c = RawClient(self.server)
        c.handshake()
        c.connect_op()
        c.send_json({"op": "dance", "id": 1})
        c.recv_json(what="unknown_op error")
        c.send_json({"op": "subscribe", "id": 2, "channel": "m", "since": {"serial": 5, "epoch": "x"}})
        c.recv_json(what="subscribed")
        api_publish(self.server.port, "m", 1)
        c.recv_json(what="message")
        c.send_close(1000)
        c.expect_close(1000, reply=False)
        c.close()
        bad = RawClient(self.server)
        bad.request(build_request("GET", "/ws", headers=upgrade_headers(self.server.port, key=new_key(),
                                                                         version="8")))
        bad.close()
        time.sleep(0.2)
        r = self.get("/metrics")
        self.assertEqual(r.status, 200, msg=repr(r))
        self.assertIn("text/plain", r.header("content-type") or "", msg=repr(r))
        self.assertIn("version=0.0.4", r.header("content-type") or "", msg=repr(r))
        text = r.text()
        types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
        samples = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", text, re.M))
        for name, kind in METRIC_TYPES.items():
            if name == "herald_auth_failures_total":
                continue  # a family without samples has no TYPE line, and nothing is refused here
            with self.subTest(metric=name):
                self.assertEqual(types.get(name), kind, msg=f"# TYPE line for {name}")
                wanted = {f"{name}_bucket", f"{name}_sum", f"{name}_count"} if kind == "histogram" else {name}
                self.assertTrue(wanted <= samples, msg=f"samples for {name}: expected {wanted}; "
                                                       f"metric names present: {sorted(samples)}")
        self.assertRegex(text, r'herald_connections_closed_total\{[^}]*code="1000"', msg="closed_total{code}")
        self.assertRegex(text, r'herald_errors_total\{[^}]*code="unknown_op"[^}]*\} 1', msg="errors_total{code}")
        self.assertRegex(text, r'herald_resumes_total\{[^}]*result="epoch_changed"[^}]*\} 1', msg="resumes")
        self.assertRegex(text, r'herald_handshake_failures_total\{[^}]*reason="[^"]+"[^}]*\} 1', msg="handshake")
        self.assertRegex(text, r'herald_publish_to_write_seconds_count(\{[^}]*\})? 1\b', msg="histogram count")


class MetricsMoveTest(HttpCase, AsyncHeraldTestCase):
    def setUp(self):
        self.server = self.start_server()

    async def poll_metric(self, name, expected, timeout=2.0, **labels):
        deadline = time.monotonic() + timeout
        while True:
            value = await self.to_thread(lambda: self.server.metric(name, **labels))
            if value == expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        self.assertEqual(value, expected, msg=f"{name}{labels or ''} after {timeout}s")

    async def test_counters_and_gauges_move(self):
        m = lambda name, **l: self.to_thread(lambda: self.server.metric(name, **l))
        conns0, accepted0 = await m("herald_connections"), await m("herald_connections_accepted_total")
        closed0 = await m("herald_connections_closed_total", code="1000")
        subs0, chans0 = await m("herald_subscriptions"), await m("herald_channels")
        pub0, deliv0 = await m("herald_messages_published_total"), await m("herald_messages_delivered_total")
        rx0, tx0 = await m("herald_bytes_received_total"), await m("herald_bytes_sent_total")

        clients = [await self.connected_ws(self.server) for _ in range(3)]
        await self.poll_metric("herald_connections", conns0 + 3)
        self.assertGreaterEqual(await m("herald_connections_accepted_total") - accepted0, 3, msg="accepted_total")
        await clients[0].subscribe("mm.fresh", id=2)
        await clients[1].subscribe("mm.fresh", id=2)
        await self.poll_metric("herald_subscriptions", subs0 + 2)
        await self.poll_metric("herald_channels", chans0 + 1)

        for i in range(5):
            r = await self.to_thread(api_publish, self.server.port, "mm.fresh", i)
            self.assertEqual(r.status, 200, msg=repr(r))
        for i in range(3):
            await clients[2].publish("mm.fresh", i, id=10 + i)
        for c in clients[:2]:
            for _ in range(8):
                await c.expect(op="message", channel="mm.fresh")
        await self.poll_metric("herald_messages_published_total", pub0 + 8)
        await self.poll_metric("herald_messages_delivered_total", deliv0 + 16)
        self.assertGreater(await m("herald_bytes_received_total"), rx0, msg="bytes_received_total")
        self.assertGreater(await m("herald_bytes_sent_total"), tx0, msg="bytes_sent_total")

        for c in clients:
            await c.close()
        await self.poll_metric("herald_connections", conns0)
        await self.poll_metric("herald_subscriptions", subs0)
        await self.poll_metric("herald_connections_closed_total", closed0 + 3, code="1000")

    async def test_gauges_recover_after_abrupt_disconnects(self):
        m = lambda name: self.to_thread(lambda: self.server.metric(name))
        conns0, subs0 = await m("herald_connections"), await m("herald_subscriptions")
        clients = []
        for i in range(10):
            c = RawClient(self.server)
            self.addCleanup(c.close)
            if i % 3 == 0:
                c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\n")  # half a handshake
            else:
                c.handshake()
                c.connect_op()
                c.send_json({"op": "subscribe", "id": 2, "channel": f"abrupt.{i % 2}"})
                c.recv_json(what="subscribed")
            clients.append(c)
        await self.poll_metric("herald_connections", conns0 + 10)
        await self.poll_metric("herald_subscriptions", subs0 + 6)
        for c in clients:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close → RST
            c.close()
        await self.poll_metric("herald_connections", conns0, timeout=3)
        await self.poll_metric("herald_subscriptions", subs0, timeout=3)
        r = await self.to_thread(api_publish, self.server.port, "abrupt.0", "after")
        self.assertEqual(r.status, 200, msg=repr(r))

    async def test_http_publish_delivered_and_deduplicated(self):
        sub = await self.connected_ws(self.server)
        await sub.subscribe("api.d")
        r = await self.to_thread(api_publish, self.server.port, "api.d", {"hello": "world"}, "key-1")
        self.assertEqual(r.status, 200, msg=repr(r))
        self.assertEqual((r.json()["serial"], r.json()["duplicate"]), (1, False), msg=repr(r))
        m = await sub.recv_json(what="message published over HTTP")
        self.assertEqual(m, {"op": "message", "channel": "api.d", "serial": 1, "data": {"hello": "world"}})
        r = await self.to_thread(api_publish, self.server.port, "api.d", {"hello": "world"}, "key-1")
        self.assertEqual((r.status, r.json()["serial"], r.json()["duplicate"]), (200, 1, True),
                         msg=f"repeated key over HTTP: {r!r}")
        await sub.expect_silence(0.3)


class ApiKeyTest(HttpCase, HeraldTestCase):
    def setUp(self):
        self.server = self.start_server("--api-key", "secret")

    def test_publish_requires_bearer(self):
        port = self.server.port
        body = {"channel": "k", "data": 1}
        for what, headers in (("no Authorization", {}), ("wrong key", {"Authorization": "Bearer nope"}),
                              ("Basic scheme", {"Authorization": "Basic secret"}),
                              ("key as prefix", {"Authorization": "Bearer secretX"}),
                              ("empty bearer", {"Authorization": "Bearer "})):
            with self.subTest(what):
                r = http_request(port, "POST", "/api/publish", body=body, headers=headers)
                self.assert_error(r, 401, "unauthorized", f"POST /api/publish with {what}")
                self.assertTrue((r.header("www-authenticate") or "").startswith("Bearer"),
                                msg=f"401 needs WWW-Authenticate: Bearer; {r!r}")
        r = http_request(port, "POST", "/api/publish", body=body, headers={"Authorization": "Bearer secret"})
        self.assertEqual(r.status, 200, msg=f"right key: {r!r}")

    def test_history_requires_bearer(self):
        r = self.get("/api/history?channel=k")
        self.assert_error(r, 401, "unauthorized", "GET /api/history without key")
        r = self.get("/api/history?channel=k", headers={"Authorization": "Bearer wrong"})
        self.assert_error(r, 401, "unauthorized", "GET /api/history with a wrong key")
        r = self.get("/api/history?channel=k", headers={"Authorization": "Bearer secret"})
        self.assertEqual(r.status, 200, msg=repr(r))

    def test_health_and_metrics_stay_open(self):
        for path in ("/healthz", "/readyz", "/metrics"):
            self.assertEqual(self.get(path).status, 200, msg=f"{path} must not need the API key")


if __name__ == "__main__":
    unittest.main()
