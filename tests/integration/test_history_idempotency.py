"""The history op, idempotent publishing with keys, and per-namespace retention overrides."""
import unittest

from harness import AsyncHeraldTestCase, api_publish, http_request


class HistoryTest(AsyncHeraldTestCase):
    def setUp(self):
        self.server = self.start_server("--namespace", "chat:5:300", "--client-rate", "0")

    async def fill(self, channel, n, client=None):
        pub = client or await self.connected_ws(self.server)
        for start in range(1, n + 1, 50):
            batch = range(start, min(start + 50, n + 1))
            for i in batch:
                await pub.send_json({"op": "publish", "id": i, "channel": channel, "data": {"n": i}})
            for i in batch:
                await pub.expect(op="published", id=i, channel=channel)
        return pub

    async def history(self, c, channel, id=5, **params):
        await c.send_json({"op": "history", "id": id, "channel": channel, **params})
        reply = await c.recv_json(what=f"history reply for {channel} {params}")
        self.assertEqual((reply.get("op"), reply.get("id"), reply.get("channel")), ("history", id, channel),
                         msg=f"history {channel} {params} → {reply}")
        self.assertIsInstance(reply.get("epoch"), str, msg=repr(reply))
        return reply

    def serials(self, reply):
        return [m["serial"] for m in reply["messages"]]

    async def test_history_variants(self):
        c = await self.fill("hist", 150)
        r = await self.history(c, "hist")
        self.assertEqual(r["serial"], 150, msg="top serial")
        self.assertEqual(self.serials(r), list(range(51, 151)), msg="no since, no limit → newest 100, oldest first")
        self.assertEqual(r["messages"][0], {"serial": 51, "data": {"n": 51}}, msg="history entry shape")
        r = await self.history(c, "hist", limit=10)
        self.assertEqual(self.serials(r), list(range(141, 151)), msg="limit 10 without since → newest 10")
        r = await self.history(c, "hist", since=140)
        self.assertEqual(self.serials(r), list(range(141, 151)), msg="since 140 → 141..150")
        r = await self.history(c, "hist", since=10, limit=5)
        self.assertEqual(self.serials(r), [11, 12, 13, 14, 15], msg="since 10 limit 5 → first 5 after 10")
        r = await self.history(c, "hist", since=0)
        self.assertEqual(self.serials(r), list(range(1, 101)), msg="since 0 → first 100 (default limit)")
        r = await self.history(c, "hist", since=150)
        self.assertEqual(r["messages"], [], msg="since top → nothing")
        r = await self.history(c, "hist", limit=0)
        self.assertEqual((r["messages"], r["serial"]), ([], 150), msg="limit 0 → no messages, top still reported")
        r = await self.history(c, "hist", limit=500)
        self.assertEqual(self.serials(r), list(range(1, 151)), msg="limit 500 → all 150 held")

    async def test_history_of_unknown_channel_is_empty(self):
        c = await self.connected_ws(self.server)
        r = await self.history(c, "never.published")
        self.assertEqual((r["serial"], r["messages"]), (0, []), msg=repr(r))

    async def test_history_limit_capped_by_history_size(self):
        c = await self.fill("chat:lobby", 20)
        r = await self.history(c, "chat:lobby", limit=100)
        self.assertEqual(self.serials(r), [16, 17, 18, 19, 20], msg="chat:* keeps 5 (--namespace chat:5:300)")
        self.assertEqual(r["serial"], 20)
        r = await self.history(c, "chat:lobby", since=2)
        self.assertEqual(self.serials(r), [16, 17, 18, 19, 20], msg="since older than the history → what is held")

    async def test_namespace_override_only_applies_to_its_namespace(self):
        c = await self.fill("chat:room", 20)
        await self.fill("other:room", 20, c)
        await self.fill("chatroom", 20, c)
        await self.fill("room.chat:x", 20, c)
        expected = {"chat:room": list(range(16, 21)), "other:room": list(range(1, 21)),
                    "chatroom": list(range(1, 21)), "room.chat:x": list(range(1, 21))}
        for ch, want in expected.items():
            r = await self.history(c, ch)
            self.assertEqual(self.serials(r), want, msg=f"history of {ch} with --namespace chat:5:300")
        # Resume below the namespace's history fails, elsewhere it works.
        epoch = (await self.history(c, "chat:room"))["epoch"]
        sub = await self.connected_ws(self.server)
        s = await sub.subscribe("chat:room", id=2, since={"serial": 10, "epoch": epoch})
        self.assertEqual((s["resumed"], s.get("reason")), (False, "history_expired"), msg=repr(s))
        epoch = (await self.history(c, "other:room"))["epoch"]
        s = await sub.subscribe("other:room", id=3, since={"serial": 10, "epoch": epoch})
        self.assertEqual((s["resumed"], s["replayed"]), (True, 10), msg=repr(s))

    async def test_http_history(self):
        await self.fill("httphist", 30)
        r = await self.to_thread(http_request, self.server.port, "GET",
                                 "/api/history?channel=httphist&since=25&limit=3")
        self.assertEqual(r.status, 200, msg=repr(r))
        body = r.json()
        self.assertEqual((body["channel"], body["serial"], [m["serial"] for m in body["messages"]]),
                         ("httphist", 30, [26, 27, 28]), msg=repr(body))


class IdempotencyTest(AsyncHeraldTestCase):
    def setUp(self):
        self.server = self.start_server()

    async def test_ws_publish_with_key(self):
        sub = await self.connected_ws(self.server)
        await sub.subscribe("idem")
        pub = await self.connected_ws(self.server)
        first = await pub.publish("idem", {"v": 1}, id=1, key="k-1")
        again = await pub.publish("idem", {"v": 1}, id=2, key="k-1")
        self.assertEqual(again["serial"], first["serial"], msg=f"repeat of key k-1: first {first}, again {again}")
        other = await pub.publish("idem", {"v": 2}, id=3, key="k-2")
        self.assertEqual(other["serial"], first["serial"] + 1, msg="a different key is a new message")
        plain = await pub.publish("idem", {"v": 3}, id=4)
        self.assertEqual(plain["serial"], first["serial"] + 2)
        got = [(await sub.recv_json(what="message"))["serial"] for _ in range(3)]
        self.assertEqual(got, [1, 2, 3], msg="the repeated key is delivered once")
        await sub.expect_silence(0.3)

    async def test_key_is_per_channel(self):
        pub = await self.connected_ws(self.server)
        await pub.publish("kc.a", 1, key="same")
        b = await pub.publish("kc.b", 1, key="same")
        self.assertEqual(b["serial"], 1, msg="the same key on another channel is a different message")

    async def test_http_publish_with_key(self):
        sub = await self.connected_ws(self.server)
        await sub.subscribe("idem.http")
        r1 = await self.to_thread(api_publish, self.server.port, "idem.http", "x", "hk")
        r2 = await self.to_thread(api_publish, self.server.port, "idem.http", "x", "hk")
        self.assertEqual((r1.status, r2.status), (200, 200), msg=f"{r1!r} {r2!r}")
        b1, b2 = r1.json(), r2.json()
        self.assertEqual((b1["serial"], b1["duplicate"]), (1, False), msg=repr(b1))
        self.assertEqual((b2["serial"], b2["duplicate"]), (1, True), msg=f"repeated key over HTTP: {b2}")
        # The same key from a WebSocket client is the same message too.
        pub = await self.connected_ws(self.server)
        p = await pub.publish("idem.http", "x", key="hk")
        self.assertEqual(p["serial"], 1, msg=f"WS publish with the key used over HTTP: {p}")
        await sub.expect(op="message", serial=1)
        await sub.expect_silence(0.3)


if __name__ == "__main__":
    unittest.main()
