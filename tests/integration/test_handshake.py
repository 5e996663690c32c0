"""HTTP upgrade handshake at /ws, driven over raw sockets (RFC 6455 section 4, spec "HTTP on the same port")."""
import base64
import time
import unittest

from harness import (HeraldTestCase, OP_TEXT, SUBPROTOCOL, build_request, encode_frame, new_key,
                     upgrade_headers, ws_accept)


class HandshakeTest(HeraldTestCase):
    def setUp(self):
        self.server = self.start_server()

    def send_upgrade(self, method="GET", path="/ws", http_version="HTTP/1.1", **kw):
        """Sends one upgrade request on a fresh connection; returns (client, response, key)."""
        key = kw.pop("key", new_key())
        c = self.raw(self.server)
        resp = c.request(build_request(method, path, http_version, upgrade_headers(self.server.port, key=key, **kw)))
        return c, resp, key

    def assert_accepted(self, resp, key, what):
        self.assertEqual(resp.status, 101, msg=f"{what}: expected 101 Switching Protocols, got {resp!r}")
        self.assertEqual(resp.header("sec-websocket-accept"), ws_accept(key),
                         msg=f"{what}: Sec-WebSocket-Accept for key {key!r}; response {resp!r}")
        self.assertEqual(resp.header("sec-websocket-protocol"), SUBPROTOCOL,
                         msg=f"{what}: Sec-WebSocket-Protocol; response {resp!r}")
        self.assertEqual((resp.header("upgrade") or "").lower(), "websocket", msg=f"{what}: Upgrade; {resp!r}")
        self.assertIn("upgrade", (resp.header("connection") or "").lower(), msg=f"{what}: Connection; {resp!r}")

    def assert_works(self, c):
        """After a 101 the connection speaks herald.v1.json: a ping op gets a pong."""
        c.send_json({"op": "ping", "id": 5})
        reply = c.recv_json(what="pong to ping id 5")
        self.assertEqual(reply, {"op": "pong", "id": 5}, msg="reply to ping after the handshake")

    def assert_rejected(self, c, resp, status, what):
        """A complete HTTP response with a body, then the server closes the TCP connection."""
        self.assertEqual(resp.status, status, msg=f"{what}: expected HTTP {status}, got {resp!r}\n"
                                                  f"stderr:\n{self.server.stderr_tail(10)}")
        self.assertGreater(len(resp.body), 0, msg=f"{what}: the {status} response should have a body: {resp!r}")
        self.assertIsNone(resp.header("sec-websocket-accept"), msg=f"{what}: rejection must not carry Accept")
        extra = c.read_eof(3.0)
        self.assertEqual(extra, b"", msg=f"{what}: bytes after the complete response (Content-Length mismatch?)")

    # -- accepted ---------------------------------------------------------------------------------------------

    def test_valid_upgrade(self):
        c, resp, key = self.send_upgrade()
        self.assert_accepted(resp, key, "valid upgrade")
        self.assertTrue(resp.status_line.startswith("HTTP/1.1 101"), msg=resp.status_line)
        self.assert_works(c)

    def test_rfc_sample_key(self):
        c, resp, key = self.send_upgrade(key="dGhlIHNhbXBsZSBub25jZQ==")
        self.assertEqual(resp.header("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", msg=repr(resp))

    def test_no_subprotocol_offered_still_served_herald(self):
        c, resp, key = self.send_upgrade(protocols=None)
        self.assert_accepted(resp, key, "no Sec-WebSocket-Protocol offered")
        self.assert_works(c)

    def test_herald_among_other_subprotocols(self):
        c, resp, key = self.send_upgrade(protocols="chat, herald.v1.json, mqtt")
        self.assert_accepted(resp, key, "herald.v1.json offered among others")

    def test_only_other_subprotocols_rejected(self):
        c, resp, _ = self.send_upgrade(protocols="chat, mqtt")
        self.assert_rejected(c, resp, 400, "only other subprotocols offered")

    def test_connection_keep_alive_upgrade_and_mixed_case(self):
        key = new_key()
        headers = [("hOST", f"127.0.0.1:{self.server.port}"), ("UPGRADE", "WebSocket"),
                   ("connection", "keep-alive, Upgrade"), ("sec-websocket-key", key),
                   ("SEC-WEBSOCKET-VERSION", "13"), ("Sec-Websocket-Protocol", SUBPROTOCOL)]
        c = self.raw(self.server)
        resp = c.request(build_request("GET", "/ws", headers=headers))
        self.assert_accepted(resp, key, "Connection: keep-alive, Upgrade with mixed-case names")
        self.assert_works(c)

    def test_header_count_at_limit_accepted(self):
        # 6 standard fields + 94 = exactly 100 header fields: allowed (only > 100 is rejected).
        extra = [(f"X-Fill-{i}", "v") for i in range(94)]
        c, resp, key = self.send_upgrade(extra=extra)
        self.assert_accepted(resp, key, "exactly 100 header fields")

    def test_101_header_fields_431(self):
        c, resp, _ = self.send_upgrade(extra=[(f"X-Fill-{i}", "v") for i in range(95)])
        self.assert_rejected(c, resp, 431, "101 header fields")

    def test_request_head_byte_at_a_time(self):
        key = new_key()
        c = self.raw(self.server)
        data = build_request("GET", "/ws", headers=upgrade_headers(self.server.port, key=key))
        for i in range(0, len(data), 7):
            c.send(data[i:i + 7])
            time.sleep(0.002)
        self.assert_accepted(c.read_http_response(), key, "request head sent in 7-byte pieces")
        self.assert_works(c)

    def test_frame_pipelined_with_request(self):
        # A client may send its first frame right behind the request, before it has seen the 101.
        key = new_key()
        c = self.raw(self.server)
        c.send(build_request("GET", "/ws", headers=upgrade_headers(self.server.port, key=key))
               + encode_frame(OP_TEXT, b'{"op":"ping","id":5}'))
        self.assert_accepted(c.read_http_response(), key, "request + frame in one write")
        self.assertEqual(c.recv_json(what="pong to the pipelined ping"), {"op": "pong", "id": 5})

    def test_garbage_request_400(self):
        c = self.raw(self.server)
        resp = c.request(b"HELLO THERE\r\n\r\n")
        self.assert_rejected(c, resp, 400, "request line 'HELLO THERE'")

    def test_large_head_under_limit_accepted(self):
        extra = [("X-Pad", "a" * 15000)]
        c, resp, key = self.send_upgrade(extra=extra)
        self.assert_accepted(resp, key, "request head of ~15 KB")

    # -- rejected ---------------------------------------------------------------------------------------------

    def test_version_8_426(self):
        c, resp, _ = self.send_upgrade(version="8")
        self.assert_rejected(c, resp, 426, "Sec-WebSocket-Version: 8")
        self.assertEqual(resp.header("sec-websocket-version"), "13", msg=f"426 must name version 13: {resp!r}")

    def test_bad_keys_400(self):
        for key in ("abc", base64.b64encode(b"x" * 15).decode(), base64.b64encode(b"x" * 17).decode(),
                    "!!!!not-base64!!!!!!!==", ""):
            with self.subTest(key=key):
                c, resp, _ = self.send_upgrade(key=key)
                self.assert_rejected(c, resp, 400, f"Sec-WebSocket-Key {key!r}")

    def test_missing_key_400(self):
        c = self.raw(self.server)
        resp = c.request(build_request("GET", "/ws", headers=upgrade_headers(self.server.port, key=None)))
        self.assert_rejected(c, resp, 400, "no Sec-WebSocket-Key")

    def test_missing_upgrade_400(self):
        c, resp, _ = self.send_upgrade(upgrade=None)
        self.assert_rejected(c, resp, 400, "no Upgrade header")

    def test_upgrade_not_websocket_400(self):
        c, resp, _ = self.send_upgrade(upgrade="h2c")
        self.assert_rejected(c, resp, 400, "Upgrade: h2c")

    def test_connection_without_upgrade_token_400(self):
        c, resp, _ = self.send_upgrade(connection="keep-alive")
        self.assert_rejected(c, resp, 400, "Connection: keep-alive (no upgrade token)")

    def test_post_405(self):
        c, resp, _ = self.send_upgrade(method="POST")
        self.assert_rejected(c, resp, 405, "POST /ws")
        self.assertIn("GET", resp.header("allow") or "", msg=f"405 needs an Allow header naming GET: {resp!r}")

    def test_other_path_404(self):
        c, resp, _ = self.send_upgrade(path="/other")
        self.assert_rejected(c, resp, 404, "upgrade at /other")

    def test_http10_upgrade_400(self):
        c, resp, _ = self.send_upgrade(http_version="HTTP/1.0")
        self.assert_rejected(c, resp, 400, "HTTP/1.0 upgrade")

    def test_http2_request_line_505(self):
        c, resp, _ = self.send_upgrade(http_version="HTTP/2.0")
        self.assert_rejected(c, resp, 505, "request line HTTP/2.0")

    def test_head_over_16k_431(self):
        c, resp, _ = self.send_upgrade(extra=[("X-Pad", "a" * 17000)])
        self.assert_rejected(c, resp, 431, "request head > 16 KiB")

    def test_too_many_header_fields_431(self):
        c, resp, _ = self.send_upgrade(extra=[(f"X-Fill-{i}", "v") for i in range(110)])
        self.assert_rejected(c, resp, 431, "116 header fields")

    def test_server_still_healthy_after_rejections(self):
        for kw in ({"version": "8"}, {"key": "abc"}, {"path": "/nope"}):
            self.send_upgrade(**kw)
        c, resp, key = self.send_upgrade()
        self.assert_accepted(resp, key, "upgrade after rejections")


class HandshakeTimeoutTest(HeraldTestCase):
    def test_half_request_head_disconnected(self):
        server = self.start_server("--handshake-timeout", "1")
        c = self.raw(server)
        c.send(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n".encode())
        start = time.monotonic()
        data = c.read_eof(4.0)
        elapsed = time.monotonic() - start
        self.assertLessEqual(elapsed, 2.0, msg=f"half request head: expected TCP close within ~2 s "
                                               f"(--handshake-timeout 1), took {elapsed:.2f}s")
        self.assertGreaterEqual(elapsed, 0.5, msg=f"closed after {elapsed:.2f}s, before the 1 s handshake timeout")
        self.assertEqual(data, b"", msg="spec: handshake timeout → TCP close with no response")

    def test_trickling_request_head_disconnected(self):
        # The deadline covers the whole head, not the gap between bytes.
        server = self.start_server("--handshake-timeout", "1")
        c = self.raw(server)
        data = build_request("GET", "/ws", headers=upgrade_headers(server.port, key=new_key()))
        start = time.monotonic()
        closed = False
        for i in range(len(data) - 4):
            try:
                c.send(data[i:i + 1])
            except OSError:
                closed = True
                break
            if time.monotonic() - start > 3:
                break
            time.sleep(0.05)
        if not closed:
            try:
                c.read_eof(0.5)
                closed = True
            except AssertionError:
                pass
        elapsed = time.monotonic() - start
        self.assertTrue(closed, msg="a request head trickling in one byte per 50 ms was not cut off within 3 s "
                                    "(--handshake-timeout 1)")
        self.assertLessEqual(elapsed, 2.6, msg=f"trickling client cut off after {elapsed:.2f}s")

    def test_silent_connection_disconnected(self):
        server = self.start_server("--handshake-timeout", "1")
        c = self.raw(server)
        start = time.monotonic()
        c.read_eof(4.0)
        self.assertLessEqual(time.monotonic() - start, 2.0, msg="silent TCP connection not closed within ~2 s")


class MaxConnectionsTest(HeraldTestCase):
    def test_third_connection_503(self):
        server = self.start_server("--max-connections", "2")
        a = self.raw(server)
        a.handshake()
        b = self.raw(server)
        b.handshake()
        c = self.raw(server)
        c.send(build_request("GET", "/ws", headers=upgrade_headers(server.port, key=new_key())))
        resp = c.read_http_response()
        self.assertEqual(resp.status, 503, msg=f"third connection with --max-connections 2: {resp!r}")
        self.assertEqual(resp.header("retry-after"), "1", msg=f"503 needs Retry-After: 1: {resp!r}")
        self.assertEqual(resp.body, b"too many connections\n", msg=f"503 body: {resp!r}")
        self.assertEqual(c.read_eof(3.0), b"", msg="server must close after the 503")
        # The two admitted connections still work.
        for client in (a, b):
            client.send_json({"op": "ping", "id": 1})
            self.assertEqual(client.recv_json(what="pong"), {"op": "pong", "id": 1})
        # After one leaves, a new connection is admitted again (bounded retry while the close is processed).
        a.send_close(1000)
        a.expect_close(1000, reply=False)
        a.read_eof(3.0)
        deadline = time.monotonic() + 3
        while True:
            d = self.raw(server)
            resp = d.request(build_request("GET", "/ws", headers=upgrade_headers(server.port, key=new_key())))
            if resp.status == 101 or time.monotonic() > deadline:
                break
            d.close()
            time.sleep(0.1)
        self.assertEqual(resp.status, 101, msg=f"after one of two connections closed, a new one: {resp!r}")


if __name__ == "__main__":
    unittest.main()
