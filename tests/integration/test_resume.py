"""Resumption: `since` positions on subscribe, sessions on connect, and the reasons a resume is refused."""
import asyncio
import random
import re
import unittest

from harness import AsyncHeraldTestCase, WSClient

HEX32 = re.compile(r"^[0-9a-f]{32}$")


class ResumeStreamTest(AsyncHeraldTestCase):
    async def test_reconnecting_subscriber_sees_every_serial_once(self):
        # A history larger than the stream so no reconnect can legitimately hit history_expired.
        server = self.start_server("--history-size", "2000", "--client-rate", "0")
        total = 1200
        channel = "stream:resume"
        pub = await self.connected_ws(server)

        first = await WSClient.open(server)
        self.addAsyncCleanup(first.close)
        await first.connect()
        s0 = await first.subscribe(channel, id=2)
        self.assertEqual(s0["serial"], 0, msg=f"fresh channel: {s0}")
        epoch = s0["epoch"]

        async def publisher():
            for start in range(1, total + 1, 25):
                batch = range(start, min(start + 25, total + 1))
                for i in batch:
                    await pub.send_json({"op": "publish", "id": i, "channel": channel, "data": {"i": i}})
                for i in batch:
                    await pub.expect(op="published", id=i, serial=i)
                await asyncio.sleep(0.01)

        pub_task = asyncio.create_task(publisher())
        self.addAsyncCleanup(self._cancel, pub_task)

        rng = random.Random(20261125)
        received = []  # every serial, in arrival order, across connections
        subscriptions = []  # (since, subscribed reply, serials received on that subscription)
        client, sub, since = first, s0, None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 40
        reconnects = 0
        while not received or received[-1] < total:
            self.assertLess(loop.time(), deadline, msg=f"stream not complete after 40 s: got up to "
                                                       f"{received[-1] if received else None}")
            budget = rng.randint(60, 220) if reconnects < 8 else total
            serials = []
            while len(serials) < budget and (not received or received[-1] < total):
                m = await client.recv_json(10, what=f"message after serial {received[-1] if received else 0} "
                                                    f"(subscription #{len(subscriptions) + 1}, since={since})")
                self.assertEqual((m.get("op"), m.get("channel")), ("message", channel), msg=f"unexpected {m}")
                self.assertEqual(m["data"], {"i": m["serial"]}, msg=f"payload of serial {m['serial']}")
                serials.append(m["serial"])
                received.append(m["serial"])
            subscriptions.append((since, sub, serials))
            if received[-1] >= total:
                await client.close()
                break
            # Leave mid-stream: alternately a clean close handshake and an abrupt TCP abort.
            if reconnects % 2 == 0:
                await client.close()
            else:
                client.ws.transport.abort()
            reconnects += 1
            since = {"serial": received[-1], "epoch": epoch}
            client = await WSClient.open(server)
            self.addAsyncCleanup(client.close)
            await client.connect()
            sub = await client.subscribe(channel, id=2, since=since)
            self.assertIs(sub.get("resumed"), True, msg=f"resume from {since}: {sub}")
            self.assertNotIn("reason", sub, msg=f"resumed subscribe must not carry a reason: {sub}")
            self.assertEqual(sub["epoch"], epoch, msg="epoch changed on a single node")
            self.assertEqual(sub["replayed"], sub["serial"] - since["serial"],
                             msg=f"replayed must count the serials between since and the top: {sub}")

        await asyncio.wait_for(pub_task, 20)
        self.assertGreaterEqual(reconnects, 5, msg="the test should have reconnected several times")
        dups = sorted({s for s in received if received.count(s) > 1})
        self.assertEqual(dups, [], msg="duplicate serials across reconnects")
        missing = sorted(set(range(1, total + 1)) - set(received))
        self.assertEqual(missing, [], msg="serials never received")
        self.assertEqual(received, list(range(1, total + 1)), msg="serials out of order")
        for since, sub, serials in subscriptions:
            start = since["serial"] if since else sub["serial"]
            self.assertEqual(serials, list(range(start + 1, start + 1 + len(serials))),
                             msg=f"per-subscription order (since {since}, subscribed {sub})")

    @staticmethod
    async def _cancel(task):
        task.cancel()
        try:
            await task
        except BaseException:
            pass


class ResumePositionTest(AsyncHeraldTestCase):
    def setUp(self):
        self.server = self.start_server()

    async def publish_n(self, channel, n):
        pub = await self.connected_ws(self.server)
        serials = []
        for i in range(n):
            serials.append((await pub.publish(channel, {"n": i}, id=i))["serial"])
        await pub.close()
        return serials

    async def epoch_of(self, channel):
        c = await self.connected_ws(self.server)
        s = await c.subscribe(channel, id=77)
        await c.close()
        return s["epoch"], s["serial"]

    async def test_subscribed_first_then_replay_then_live(self):
        await self.publish_n("rp", 10)
        epoch, top = await self.epoch_of("rp")
        self.assertEqual(top, 10)
        c = await self.connected_ws(self.server)
        s = await c.subscribe("rp", id=4, since={"serial": 6, "epoch": epoch})
        self.assertEqual(s, {"op": "subscribed", "id": 4, "channel": "rp", "serial": 10, "epoch": epoch,
                             "resumed": True, "replayed": 4}, msg="subscribe since 6 with top 10")
        got = [(await c.recv_json(what=f"replayed message {i}"))["serial"] for i in range(7, 11)]
        self.assertEqual(got, [7, 8, 9, 10], msg="replay after the subscribed reply")
        await self.publish_n("rp", 1)
        await c.expect(op="message", channel="rp", serial=11)

    async def test_since_zero_replays_everything(self):
        await self.publish_n("zero", 5)
        epoch, _ = await self.epoch_of("zero")
        c = await self.connected_ws(self.server)
        s = await c.subscribe("zero", since={"serial": 0, "epoch": epoch})
        self.assertEqual((s["resumed"], s["replayed"], s["serial"]), (True, 5, 5), msg=repr(s))
        got = [(await c.recv_json(what="replay from 0"))["serial"] for _ in range(5)]
        self.assertEqual(got, [1, 2, 3, 4, 5])

    async def test_unsubscribe_then_resubscribe_with_since(self):
        await self.publish_n("again", 2)
        c = await self.connected_ws(self.server)
        s = await c.subscribe("again", id=2)
        await self.publish_n("again", 1)
        await c.expect(op="message", serial=3)
        await c.send_json({"op": "unsubscribe", "id": 3, "channel": "again"})
        await c.expect(op="unsubscribed", id=3)
        await self.publish_n("again", 2)
        s = await c.subscribe("again", id=4, since={"serial": 3, "epoch": s["epoch"]})
        self.assertEqual((s["resumed"], s["replayed"], s["serial"]), (True, 2, 5), msg=repr(s))
        self.assertEqual([(await c.recv_json(what="replay"))["serial"] for _ in range(2)], [4, 5])

    async def test_since_equal_top_resumes_with_nothing(self):
        await self.publish_n("top", 3)
        epoch, _ = await self.epoch_of("top")
        c = await self.connected_ws(self.server)
        s = await c.subscribe("top", since={"serial": 3, "epoch": epoch})
        self.assertEqual((s["resumed"], s["replayed"], s["serial"]), (True, 0, 3), msg=repr(s))
        await c.expect_silence(0.2)

    async def test_epoch_changed(self):
        await self.publish_n("ep", 3)
        c = await self.connected_ws(self.server)
        s = await c.subscribe("ep", since={"serial": 1, "epoch": "definitely-not-the-epoch"})
        self.assertEqual((s["resumed"], s["replayed"], s.get("reason"), s["serial"]),
                         (False, 0, "epoch_changed", 3), msg=f"since with a foreign epoch: {s}")
        await c.expect_silence(0.2)  # no replay
        await self.publish_n("ep", 1)
        await c.expect(op="message", channel="ep", serial=4)  # live continues from the top

    async def test_invalid_position(self):
        await self.publish_n("ip", 3)
        epoch, _ = await self.epoch_of("ip")
        c = await self.connected_ws(self.server)
        s = await c.subscribe("ip", since={"serial": 4, "epoch": epoch})
        self.assertEqual((s["resumed"], s["replayed"], s.get("reason"), s["serial"]),
                         (False, 0, "invalid_position", 3), msg=f"since.serial 4 > top 3: {s}")
        await self.publish_n("ip", 1)
        await c.expect(op="message", channel="ip", serial=4)

    async def test_subscribe_without_since_has_no_reason(self):
        await self.publish_n("ns", 2)
        c = await self.connected_ws(self.server)
        s = await c.subscribe("ns")
        self.assertEqual((s["resumed"], s["replayed"], s["serial"]), (False, 0, 2), msg=repr(s))
        self.assertNotIn("reason", s, msg=f"no since → no reason: {s}")
        await c.expect_silence(0.2)


class HistoryExpiryTest(AsyncHeraldTestCase):
    async def test_history_size_expired(self):
        server = self.start_server("--history-size", "10")
        pub = await self.connected_ws(server)
        for i in range(30):
            await pub.publish("hs", i, id=i)
        watcher = await self.connected_ws(server)
        epoch = (await watcher.subscribe("hs"))["epoch"]
        before = server.metric("herald_resumes_total", result="history_expired")
        # History holds 21..30: since 20 can be served, since 19 cannot (serial 20 is gone).
        ok = await self.connected_ws(server)
        s = await ok.subscribe("hs", since={"serial": 20, "epoch": epoch})
        self.assertEqual((s["resumed"], s["replayed"], s["serial"]), (True, 10, 30), msg=f"since 20: {s}")
        got = [(await ok.recv_json(what="replay"))["serial"] for _ in range(10)]
        self.assertEqual(got, list(range(21, 31)))
        old = await self.connected_ws(server)
        s = await old.subscribe("hs", since={"serial": 19, "epoch": epoch})
        self.assertEqual((s["resumed"], s["replayed"], s.get("reason"), s["serial"]),
                         (False, 0, "history_expired", 30), msg=f"since 19 with history 21..30: {s}")
        await old.expect_silence(0.2)
        await pub.publish("hs", "live", id=99)
        await old.expect(op="message", serial=31)
        after = server.metric("herald_resumes_total", result="history_expired")
        self.assertEqual(after - before, 1, msg="herald_resumes_total{result=history_expired} increment")

    async def test_history_ttl_expired(self):
        server = self.start_server("--history-ttl", "1")
        pub = await self.connected_ws(server)
        for i in range(5):
            await pub.publish("ttl", i, id=i)
        epoch = (await pub.subscribe("ttl"))["epoch"]
        await asyncio.sleep(2.2)
        c = await self.connected_ws(server)
        s = await c.subscribe("ttl", since={"serial": 2, "epoch": epoch})
        self.assertEqual((s["resumed"], s["replayed"], s.get("reason"), s["serial"]),
                         (False, 0, "history_expired", 5), msg=f"since 2 after the 1 s ttl elapsed: {s}")


class SessionResumeTest(AsyncHeraldTestCase):
    def setUp(self):
        self.server = self.start_server()

    async def setup_session(self):
        """A client subscribed to sa and sb receives 3 + 2 messages and leaves; 4 + 1 more are published."""
        pub = await self.connected_ws(self.server)
        a = await self.connected_ws(self.server)
        session = a.connected["session"]
        ea = (await a.subscribe("sess.a", id=2))["epoch"]
        eb = (await a.subscribe("sess.b", id=3))["epoch"]
        for i in range(3):
            await pub.publish("sess.a", f"a{i + 1}", id=i)
        for i in range(2):
            await pub.publish("sess.b", f"b{i + 1}", id=i)
        for _ in range(5):
            await a.recv_json(what="live message before leaving")
        await a.close()
        await asyncio.sleep(0.2)
        for i in range(4):
            await pub.publish("sess.a", f"a{i + 4}", id=i)
        await pub.publish("sess.b", "b3", id=9)
        return session, ea, eb, pub

    async def read_restored(self, c, expected_counts):
        """Reads one subscribed (no id) per channel plus its replay; returns ({channel: subscribed}, {ch: [msgs]})."""
        subs, msgs = {}, {ch: [] for ch in expected_counts}
        for _ in range(len(expected_counts) + sum(expected_counts.values())):
            m = await c.recv_json(what=f"restored subscriptions and replays {expected_counts}")
            ch = m.get("channel")
            self.assertIn(ch, expected_counts, msg=f"unexpected message {m}")
            if m["op"] == "subscribed":
                self.assertNotIn(ch, subs, msg=f"two subscribed for {ch}")
                self.assertNotIn("id", m, msg=f"a restored subscription's reply carries no id: {m}")
                subs[ch] = m
            else:
                self.assertEqual(m["op"], "message", msg=repr(m))
                self.assertIn(ch, subs, msg=f"replayed message before its subscribed reply: {m}")
                msgs[ch].append(m)
        return subs, msgs

    async def test_resume_session_without_positions(self):
        session, ea, eb, pub = await self.setup_session()
        c = await self.ws(self.server)
        reply = await c.connect(session=session)
        self.assertEqual((reply["resumed"], reply["session"]), (True, session), msg=f"resume: {reply}")
        subs, msgs = await self.read_restored(c, {"sess.a": 4, "sess.b": 1})
        self.assertEqual((subs["sess.a"]["resumed"], subs["sess.a"]["replayed"], subs["sess.a"]["serial"]),
                         (True, 4, 7), msg=repr(subs["sess.a"]))
        self.assertEqual((subs["sess.b"]["resumed"], subs["sess.b"]["replayed"], subs["sess.b"]["serial"]),
                         (True, 1, 3), msg=repr(subs["sess.b"]))
        self.assertEqual([(m["serial"], m["data"]) for m in msgs["sess.a"]],
                         [(4, "a4"), (5, "a5"), (6, "a6"), (7, "a7")])
        self.assertEqual([(m["serial"], m["data"]) for m in msgs["sess.b"]], [(3, "b3")])
        await c.expect_silence(0.2)
        await pub.publish("sess.a", "a8")
        await c.expect(op="message", channel="sess.a", serial=8, data="a8")
        # The restored subscription is a real one.
        await c.send_json({"op": "subscribe", "id": 5, "channel": "sess.b"})
        await c.expect(op="error", id=5, code="already_subscribed")

    async def test_resume_session_positions_take_precedence(self):
        session, ea, eb, pub = await self.setup_session()
        c = await self.ws(self.server)
        reply = await c.connect(session=session, positions={"sess.a": {"serial": 1, "epoch": ea}})
        self.assertEqual((reply["resumed"], reply["session"]), (True, session), msg=repr(reply))
        subs, msgs = await self.read_restored(c, {"sess.a": 6, "sess.b": 1})
        self.assertEqual([m["serial"] for m in msgs["sess.a"]], [2, 3, 4, 5, 6, 7],
                         msg="position 1 for sess.a overrides the session record (3)")
        self.assertEqual(subs["sess.a"]["replayed"], 6, msg=repr(subs["sess.a"]))
        self.assertEqual([m["serial"] for m in msgs["sess.b"]], [3])

    async def test_positions_for_other_channels_ignored(self):
        session, ea, eb, pub = await self.setup_session()
        c = await self.ws(self.server)
        reply = await c.connect(session=session, positions={"sess.other": {"serial": 0, "epoch": ea}})
        self.assertIs(reply["resumed"], True, msg=repr(reply))
        subs, msgs = await self.read_restored(c, {"sess.a": 4, "sess.b": 1})
        await c.expect_silence(0.3)  # nothing for sess.other
        await c.send_json({"op": "unsubscribe", "id": 6, "channel": "sess.other"})
        await c.expect(op="error", id=6, code="not_subscribed")

    async def test_unknown_session(self):
        c = await self.ws(self.server)
        bogus = "0123456789abcdef0123456789abcdef"
        reply = await c.connect(session=bogus)
        self.assertIs(reply["resumed"], False, msg=repr(reply))
        self.assertRegex(reply["session"], HEX32)
        self.assertNotEqual(reply["session"], bogus, msg="an unknown session must get a NEW id")
        await c.expect_silence(0.2)

    async def test_session_ttl_expiry(self):
        server = self.start_server("--session-ttl", "1")
        a = await self.connected_ws(server)
        session = a.connected["session"]
        await a.subscribe("ttl.s")
        await a.close()
        await asyncio.sleep(2.2)
        c = await self.ws(server)
        reply = await c.connect(session=session)
        self.assertIs(reply["resumed"], False, msg=f"session 2.2 s after disconnect with --session-ttl 1: {reply}")
        self.assertNotEqual(reply["session"], session)
        await c.expect_silence(0.2)


if __name__ == "__main__":
    unittest.main()
