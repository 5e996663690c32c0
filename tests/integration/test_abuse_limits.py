"""Abuse limits against the real binary (docs/security.md): the per-connection command rate (`rate_limited`, close
4029 after 10 s of refusals), --max-subscriptions (`limit_exceeded`), and the per-IP handshake rate (429 with
Retry-After), with the client IP taken from X-Forwarded-For only behind --trusted-proxies.
"""
import asyncio
import time
import unittest

from harness import AsyncHeraldTestCase, HeraldTestCase, build_request, new_key, upgrade_headers


class CommandRateTest(AsyncHeraldTestCase):
    async def test_excess_commands_are_refused_and_not_executed(self):
        server = self.start_server("--client-rate", "10", "--client-burst", "5")
        c = await self.connected_ws(server)  # connect took one token
        for i in range(20):
            await c.send_json({"op": "publish", "id": 100 + i, "channel": "flood", "data": i})
        replies = [await c.recv_json(what=f"reply {i}") for i in range(20)]
        published = [r for r in replies if r.get("op") == "published"]
        refused = [r for r in replies if r.get("code") == "rate_limited"]
        self.assertEqual(len(published) + len(refused), 20, msg=repr(replies))
        self.assertGreaterEqual(len(published), 4, msg="the burst")
        self.assertLessEqual(len(published), 6, msg="no more than the burst (plus a refill) went through")
        for r in refused:
            self.assertEqual(r["op"], "error")
            self.assertIn("id", r, msg="the refusal carries the command's id")
        # A refused publish was not executed: the history holds only the accepted ones.
        await asyncio.sleep(0.5)
        await c.send_json({"op": "history", "id": 7, "channel": "flood", "limit": 100})
        history = await c.expect(op="history", id=7)
        self.assertEqual(len(history["messages"]), len(published))
        await asyncio.sleep(0.3)
        await c.ping()  # the connection stays open and recovers
        self.assertGreaterEqual(await self.to_thread(server.metric, "herald_rate_limited_total", limit="command"),
                                len(refused))

    async def test_ten_seconds_of_refusals_close_4029(self):
        server = self.start_server("--client-rate", "5", "--client-burst", "5")
        c = await self.connected_ws(server)
        start = time.monotonic()
        closed = None
        refusals = 0

        async def read():
            nonlocal refusals
            try:
                while True:
                    msg = await c.recv_json(timeout=15, what="replies during the flood")
                    if msg.get("code") == "rate_limited":
                        refusals += 1
            except AssertionError:
                pass  # the connection closed

        reader = asyncio.create_task(read())
        try:
            # 25 commands a second, five times the rate, for up to 14 s.
            while time.monotonic() - start < 14:
                try:
                    await c.send_json({"op": "ping"})
                except Exception:
                    break
                if c.ws.closed:
                    break
                await asyncio.sleep(0.04)
            closed = await c.expect_closed(timeout=3)
        finally:
            reader.cancel()
        elapsed = time.monotonic() - start
        self.assertEqual(closed, 4029, msg=f"close code after {elapsed:.1f}s")
        self.assertGreater(elapsed, 9.5, msg="not before 10 s of refusals")
        self.assertLess(elapsed, 13, msg="soon after 10 s of refusals")
        self.assertGreater(refusals, 100)
        self.assertEqual(await self.to_thread(server.metric, "herald_connections_closed_total", code="4029"), 1)

    async def test_zero_turns_the_limit_off(self):
        server = self.start_server("--client-rate", "0")
        c = await self.connected_ws(server)
        for i in range(300):
            await c.send_json({"op": "ping", "id": i})
        for i in range(300):
            await c.expect(op="pong", id=i)


class MaxSubscriptionsTest(AsyncHeraldTestCase):
    async def test_limit_exceeded(self):
        server = self.start_server("--max-subscriptions", "3")
        c = await self.connected_ws(server)
        for i, channel in enumerate(("a", "b", "c")):
            await c.subscribe(channel, id=10 + i)
        await c.send_json({"op": "subscribe", "id": 20, "channel": "d"})
        await c.expect(op="error", id=20, code="limit_exceeded")
        await c.send_json({"op": "unsubscribe", "id": 21, "channel": "a"})
        await c.expect(op="unsubscribed", id=21)
        await c.subscribe("d", id=22)


class ConnectRateTest(HeraldTestCase):
    def upgrade(self, server, forwarded_for=None):
        c = self.raw(server)
        extra = [("X-Forwarded-For", forwarded_for)] if forwarded_for is not None else []
        r = c.request(build_request("GET", "/ws", headers=upgrade_headers(server.port, key=new_key(), extra=extra)))
        c.close()
        return r

    def statuses(self, server, n, forwarded_for=None):
        return [self.upgrade(server, forwarded_for).status for _ in range(n)]

    def test_per_ip_handshake_rate_answers_429_with_retry_after(self):
        server = self.start_server("--connect-rate", "2")  # burst 5
        got = self.statuses(server, 7)
        self.assertEqual(got[:5], [101] * 5, msg=repr(got))
        self.assertEqual(got[6], 429, msg=repr(got))
        r = self.upgrade(server)
        self.assertEqual(r.status, 429)
        self.assertGreaterEqual(int(r.header("retry-after")), 1)
        self.assertTrue(r.body.strip())
        # Without --trusted-proxies X-Forwarded-For is not believed: a forged header changes nothing.
        self.assertEqual(self.upgrade(server, "203.0.113.50").status, 429)
        # HTTP requests are not handshakes.
        c = self.raw(server)
        self.assertEqual(c.request(build_request("GET", "/healthz", headers=[("Host", "x")])).status, 200)
        time.sleep(1.1)
        self.assertEqual(self.upgrade(server).status, 101, msg="one handshake per 500 ms refills")
        self.assertGreaterEqual(server.metric("herald_handshake_failures_total", reason="connect_rate"), 3)
        self.assertGreaterEqual(server.metric("herald_rate_limited_total", limit="connect"), 3)

    def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(self):
        server = self.start_server("--connect-rate", "2", "--trusted-proxies", "127.0.0.0/8,::1")
        self.assertEqual(self.statuses(server, 5, "203.0.113.1"), [101] * 5)
        self.assertEqual(self.upgrade(server, "203.0.113.1").status, 429)
        self.assertEqual(self.upgrade(server, "203.0.113.2").status, 101, msg="another client behind the proxy")
        # HAProxy appends the address it saw: whatever the client put in front is not believed.
        self.assertEqual(self.upgrade(server, "198.51.100.7, 203.0.113.1").status, 429)
        # Another trusted hop on the right is skipped.
        self.assertEqual(self.upgrade(server, "203.0.113.1, 127.0.0.9").status, 429)
        # The proxy's own address (no header) is its own bucket.
        self.assertEqual(self.upgrade(server).status, 101)

    def test_bad_trusted_proxies_fail_the_start(self):
        import subprocess
        from harness import herald_binary
        out = subprocess.run([herald_binary(), "--listen", "127.0.0.1:0", "--trusted-proxies", "10.0.0.0/40"],
                             capture_output=True, timeout=10)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn(b"--trusted-proxies", out.stderr)


if __name__ == "__main__":
    unittest.main()
