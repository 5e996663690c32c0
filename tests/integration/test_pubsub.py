"""herald.v1.json basics with python3-websockets: connect, ping, subscribe, publish, unsubscribe, errors."""
import asyncio
import json
import re
import unittest

from harness import AsyncHeraldTestCase, SUBPROTOCOL, api_publish

HEX32 = re.compile(r"^[0-9a-f]{32}$")


class PubSubTest(AsyncHeraldTestCase):
    def setUp(self):
        self.server = self.start_server(node_name="pubsub-node-1")

    async def test_connect(self):
        c = await self.ws(self.server)
        self.assertEqual(c.ws.subprotocol, SUBPROTOCOL, msg="negotiated subprotocol")
        await c.send_json({"op": "connect", "id": 1})
        reply = await c.recv_json(what="connected")
        self.assertEqual(set(reply), {"op", "id", "session", "node", "heartbeat", "resumed"},
                         msg=f"connected fields: {reply}")
        self.assertEqual(reply["op"], "connected", msg=repr(reply))
        self.assertEqual(reply["id"], 1, msg=repr(reply))
        self.assertRegex(reply["session"], HEX32, msg=f"session must be 32 lowercase hex chars: {reply}")
        self.assertEqual(reply["node"], "pubsub-node-1", msg=f"node from --node-name: {reply}")
        self.assertEqual(reply["heartbeat"], 25, msg=f"default heartbeat: {reply}")
        self.assertIs(reply["resumed"], False, msg=repr(reply))

    async def test_sessions_are_unique(self):
        sessions = set()
        for _ in range(5):
            c = await self.connected_ws(self.server)
            sessions.add(c.connected["session"])
        self.assertEqual(len(sessions), 5, msg=f"five connects should give five sessions: {sessions}")

    async def test_second_connect_already_connected(self):
        c = await self.connected_ws(self.server)
        await c.send_json({"op": "connect", "id": 2})
        await c.expect(op="error", id=2, code="already_connected")
        await c.ping()

    async def test_ping_before_connect(self):
        c = await self.ws(self.server)
        await c.send_json({"op": "ping", "id": 6})
        self.assertEqual(await c.recv_json(what="pong"), {"op": "pong", "id": 6})
        await c.send_json({"op": "ping"})
        self.assertEqual(await c.recv_json(what="pong without id"), {"op": "pong"},
                         msg="ping without id → pong without id")

    async def test_commands_before_connect_not_connected(self):
        c = await self.ws(self.server)
        for i, cmd in enumerate([{"op": "subscribe", "channel": "a"}, {"op": "unsubscribe", "channel": "a"},
                                 {"op": "publish", "channel": "a", "data": 1},
                                 {"op": "history", "channel": "a"}], start=10):
            await c.send_json({**cmd, "id": i})
            reply = await c.recv_json(what=f"error for {cmd['op']} before connect")
            self.assertEqual((reply.get("op"), reply.get("id"), reply.get("code")), ("error", i, "not_connected"),
                             msg=f"{cmd} before connect → {reply}")
            self.assertIsInstance(reply.get("message"), str, msg=repr(reply))
        await c.connect()  # and the connection is still usable

    async def test_publish_subscribe_in_order(self):
        sub = await self.connected_ws(self.server)
        pub = await self.connected_ws(self.server)
        s = await sub.subscribe("news", id=2)
        self.assertEqual(s, {"op": "subscribed", "id": 2, "channel": "news", "serial": 0, "epoch": s.get("epoch"),
                             "resumed": False, "replayed": 0}, msg=f"first subscribe on a new channel: {s}")
        self.assertIsInstance(s["epoch"], str)
        self.assertTrue(s["epoch"], msg="epoch must be a non-empty string")
        n = 50
        for i in range(1, n + 1):
            data = {"i": i, "text": f"héllo {i}", "nested": [1, {"x": None}]}
            published = await pub.publish("news", data, id=100 + i)
            self.assertEqual(published, {"op": "published", "id": 100 + i, "channel": "news", "serial": i},
                             msg=f"publish #{i}")
        for i in range(1, n + 1):
            m = await sub.recv_json(what=f"message serial {i}")
            self.assertEqual(m, {"op": "message", "channel": "news", "serial": i,
                                 "data": {"i": i, "text": f"héllo {i}", "nested": [1, {"x": None}]}},
                             msg=f"message #{i}")
        await sub.expect_silence(0.2)

    async def test_scalar_data_types(self):
        sub = await self.connected_ws(self.server)
        await sub.subscribe("types")
        values = [0, -1, 1.5, "s", "", True, False, None, [], {}, "ünïcode ☃ 😀", 2 ** 53]
        pub = await self.connected_ws(self.server)
        for v in values:
            await pub.publish("types", v, id=7)
        for i, v in enumerate(values, start=1):
            m = await sub.recv_json(what=f"message with data {v!r}")
            self.assertEqual((m.get("serial"), m.get("data")), (i, v), msg=f"data round trip: {m}")

    async def test_two_subscribers_identical_bytes(self):
        a = await self.connected_ws(self.server)
        b = await self.connected_ws(self.server)
        pub = await self.connected_ws(self.server)
        await a.subscribe("room")
        await b.subscribe("room")
        for i in range(20):
            await pub.publish("room", {"k": [i, "v" * i], "u": "é"}, id=i)
        for i in range(20):
            ta = await a.recv_text(what=f"message {i + 1} at subscriber a")
            tb = await b.recv_text(what=f"message {i + 1} at subscriber b")
            self.assertEqual(ta, tb, msg="every subscriber gets identical message bytes")
            self.assertEqual(json.loads(ta)["serial"], i + 1)

    async def test_publisher_receives_own_message(self):
        c = await self.connected_ws(self.server)
        await c.subscribe("self")
        await c.send_json({"op": "publish", "id": 4, "channel": "self", "data": "me"})
        got = [await c.recv_json(what="published and message"), await c.recv_json(what="published and message")]
        ops = sorted(m["op"] for m in got)
        self.assertEqual(ops, ["message", "published"], msg=f"publisher subscribed to its channel: {got}")
        msg = next(m for m in got if m["op"] == "message")
        self.assertEqual(msg, {"op": "message", "channel": "self", "serial": 1, "data": "me"})

    async def test_unsubscribe_stops_delivery(self):
        sub = await self.connected_ws(self.server)
        control = await self.connected_ws(self.server)
        pub = await self.connected_ws(self.server)
        await sub.subscribe("u")
        await control.subscribe("u")
        await pub.publish("u", 1)
        await sub.expect(op="message", serial=1)
        await control.expect(op="message", serial=1)
        await sub.send_json({"op": "unsubscribe", "id": 3, "channel": "u"})
        reply = await sub.recv_json(what="unsubscribed")
        self.assertEqual(reply, {"op": "unsubscribed", "id": 3, "channel": "u"}, msg="unsubscribe reply")
        await pub.publish("u", 2)
        await control.expect(op="message", serial=2)
        await sub.expect_silence(0.3)
        await sub.ping()
        # Subscribing again works and continues from the top.
        s = await sub.subscribe("u", id=5)
        self.assertEqual(s["serial"], 2, msg=f"resubscribe: {s}")

    async def test_already_subscribed_and_not_subscribed(self):
        c = await self.connected_ws(self.server)
        await c.subscribe("dup")
        await c.send_json({"op": "subscribe", "id": 8, "channel": "dup"})
        await c.expect(op="error", id=8, code="already_subscribed")
        await c.send_json({"op": "unsubscribe", "id": 9, "channel": "never"})
        await c.expect(op="error", id=9, code="not_subscribed")
        await c.ping()

    async def test_many_channels_one_connection(self):
        c = await self.connected_ws(self.server)
        pub = await self.connected_ws(self.server)
        chans = [f"multi.{i}" for i in range(10)]
        for i, ch in enumerate(chans):
            await c.subscribe(ch, id=i)
        for round_ in range(3):
            for ch in chans:
                await pub.publish(ch, round_)
        seen = {ch: [] for ch in chans}
        for _ in range(30):
            m = await c.recv_json(what="message on one of 10 channels")
            seen[m["channel"]].append(m["serial"])
        self.assertEqual(seen, {ch: [1, 2, 3] for ch in chans}, msg="per-channel serials")

    async def test_connect_timeout_1008(self):
        server = self.start_server("--connect-timeout", "1")
        c = await self.ws(server)
        code = await c.expect_closed(3.0)
        self.assertEqual(code, 1008, msg="no connect within --connect-timeout 1 → close 1008")
        # A client that connects in time is not closed.
        ok = await self.ws(server)
        await ok.connect()
        await asyncio.sleep(1.6)
        await ok.ping()

    async def test_connect_timeout_counts_pings_as_not_connect(self):
        server = self.start_server("--connect-timeout", "1")
        c = await self.ws(server)
        for i in range(4):
            await c.ping(id=i)
            await asyncio.sleep(0.3)
        code = await c.expect_closed(2.5)
        self.assertEqual(code, 1008, msg="pings do not replace connect: close 1008 expected")

    async def test_abrupt_disconnects_during_fanout(self):
        # Subscribers that vanish without a close frame (RST) while messages fan out must not hurt the node.
        import socket, struct
        from harness import RawClient
        victims = []
        for i in range(8):
            raw = RawClient(self.server)
            raw.handshake()
            raw.send_json({"op": "connect", "id": 1})
            raw.send_json({"op": "subscribe", "id": 2, "channel": "abrupt"})
            victims.append(raw)
        survivor = await self.connected_ws(self.server)
        await survivor.subscribe("abrupt")
        for n in range(1, 201):
            await self.to_thread(api_publish, self.server.port, "abrupt", {"n": n})
            if n == 50:
                for raw in victims:
                    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    raw.sock.close()
        for n in range(1, 201):
            message = await survivor.recv_json(what=f"message {n}")
            self.assertEqual((message["op"], message["serial"]), ("message", n), msg=f"survivor stream: {message}")
        self.assertTrue(self.server.alive(), msg="node died after abrupt disconnects:\n" + self.server.stderr_tail())
        await survivor.ping()


class NoClientPublishTest(AsyncHeraldTestCase):
    async def test_publish_disabled(self):
        server = self.start_server("--no-client-publish")
        sub = await self.connected_ws(server)
        await sub.subscribe("nc")
        c = await self.connected_ws(server)
        await c.send_json({"op": "publish", "id": 4, "channel": "nc", "data": 1})
        await c.expect(op="error", id=4, code="publish_disabled")
        await sub.expect_silence(0.2)
        r = await self.to_thread(api_publish, server.port, "nc", {"via": "http"})
        self.assertEqual(r.status, 200, msg=f"HTTP API still publishes with --no-client-publish: {r!r}")
        m = await sub.recv_json(what="message published via HTTP")
        self.assertEqual(m, {"op": "message", "channel": "nc", "serial": 1, "data": {"via": "http"}})
        await c.ping()



if __name__ == "__main__":
    unittest.main()
