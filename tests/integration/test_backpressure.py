"""Outbound limit: a subscriber that stops reading is closed with 4008; others are unaffected; memory stays bounded."""
import asyncio
import concurrent.futures
import re
import time
import unittest

from harness import AsyncHeraldTestCase, Eof, OP_CLOSE, api_publish, decode_frame

RSS_LIMIT_KIB = 200 * 1024


class BackpressureTest(AsyncHeraldTestCase):
    async def test_slow_consumer_closed_fast_consumer_complete(self):
        server = self.start_server("--outbound-limit", "65536", "--client-rate", "0")
        port = server.port

        slow = self.raw(server, rcvbuf=4096)  # SO_RCVBUF before connect: a small advertised window
        slow.handshake()
        slow.connect_op()
        slow.send_json({"op": "subscribe", "id": 2, "channel": "bp"})
        reply = slow.recv_json(what="subscribed (slow client)")
        self.assertEqual(reply.get("op"), "subscribed", msg=repr(reply))
        # From here on the slow client never reads.

        fast = await self.connected_ws(server)
        await fast.subscribe("bp")
        received = []

        async def read_fast():
            while True:
                m = await fast.recv_json(15, what=f"message after serial {received[-1] if received else 0} "
                                                  f"(fast subscriber)")
                self.assertEqual((m.get("op"), m.get("channel")), ("message", "bp"), msg=repr(m))
                received.append(m["serial"])

        reader = asyncio.create_task(read_fast())
        peak_rss = [0]

        async def watch_rss():
            while True:
                peak_rss[0] = max(peak_rss[0], server.rss_kib())
                await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch_rss())
        pad = "x" * 1000
        pool = concurrent.futures.ThreadPoolExecutor(4)
        self.addCleanup(pool.shutdown, wait=True)

        def publish_one(i):
            r = api_publish(port, "bp", {"i": i, "pad": pad})
            if r.status != 200:
                raise AssertionError(f"POST /api/publish #{i}: expected 200, got {r!r}")

        loop = asyncio.get_running_loop()
        published = 0
        slow_closes = 0
        try:
            # Publish in rounds until the node reports the slow consumer closed (bounded: 12 000 messages).
            while published < 12_000:
                await asyncio.gather(*[loop.run_in_executor(pool, publish_one, i)
                                       for i in range(published, published + 500)])
                published += 500
                slow_closes = await self.to_thread(server.metric, "herald_slow_consumer_closes_total")
                if slow_closes >= 1 and published >= 2000:
                    break
            # The fast subscriber receives every message, in order.
            deadline = loop.time() + 20
            while len(received) < published and loop.time() < deadline and not reader.done():
                await asyncio.sleep(0.05)
            if reader.done():
                reader.result()  # re-raise the reader's failure
        finally:
            reader.cancel()
            watcher.cancel()
            await asyncio.gather(reader, watcher, return_exceptions=True)
        self.assertEqual(received, list(range(1, published + 1)),
                         msg=f"fast subscriber: expected serials 1..{published} in order; got {len(received)} "
                             f"messages, first gaps at "
                             f"{[s for a, s in zip(received, received[1:]) if s != a + 1][:5]}")

        # The slow one was closed for being slow.
        deadline = time.monotonic() + 5
        while slow_closes < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            slow_closes = await self.to_thread(server.metric, "herald_slow_consumer_closes_total")
        self.assertGreaterEqual(slow_closes, 1, msg=f"herald_slow_consumer_closes_total after {published} "
                                                    f"messages of ~1 KiB with --outbound-limit 65536\n"
                                                    f"stderr:\n{server.stderr_tail()}")
        # The connection itself ends after the close handshake times out (--close-timeout, default 2 s).
        deadline = time.monotonic() + 6
        while True:
            closed_4008 = await self.to_thread(server.metric, "herald_connections_closed_total", code="4008")
            if closed_4008 >= 1 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        self.assertGreaterEqual(closed_4008, 1, msg='herald_connections_closed_total{code="4008"} within 6 s of '
                                                    'the slow-consumer close')
        self.assertRegex(server.stderr(), re.compile(r"4008|slow", re.I),
                         msg="the slow-consumer close should be logged")

        # Reading the slow socket now: a prefix of messages, then a 4008 close frame or the TCP close/reset.
        close_frame = await self.to_thread(self.drain_until_close, slow)
        if close_frame is not None:
            self.assertEqual(close_frame.close_code, 4008, msg=f"slow consumer's close frame: {close_frame!r}")

        self.assertLess(peak_rss[0], RSS_LIMIT_KIB, msg=f"peak VmRSS {peak_rss[0]} KiB")
        self.assertLess(server.rss_kib(), RSS_LIMIT_KIB, msg="VmRSS after the test")
        await fast.ping()

    def drain_until_close(self, c, timeout=15.0):
        """Reads everything; returns the close frame if one arrives, None if TCP closes first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame, used = decode_frame(c.buf)
            if frame is not None:
                del c.buf[:used]
                if frame.opcode == OP_CLOSE:
                    try:
                        c.send_close(frame.close_code or 1000)
                    except OSError:
                        pass
                    return frame
                continue
            try:
                c._fill(deadline)
            except Eof:
                return None
            except OSError:
                break
        raise AssertionError(f"the slow consumer's connection was neither closed nor sent a close frame within "
                             f"{timeout}s of reading")

    async def test_replay_larger_than_outbound_limit_reaches_reading_client(self):
        # 1 500 messages of ~1 KiB replayed at once are 23 times the outbound limit; a client that reads must
        # still get them all (the replay is paced by the socket, not dumped into the queue).
        server = self.start_server("--outbound-limit", "65536", "--history-size", "2000", "--client-rate", "0")
        pub = await self.connected_ws(server)
        for start in range(1, 1501, 100):
            for i in range(start, start + 100):
                await pub.send_json({"op": "publish", "id": i, "channel": "replay.big", "data": "z" * 1000})
            for i in range(start, start + 100):
                await pub.expect(op="published", id=i)
        c = await self.connected_ws(server)
        await c.send_json({"op": "history", "id": 9, "channel": "replay.big", "limit": 0})
        epoch = (await c.expect(op="history", id=9))["epoch"]
        start = time.monotonic()
        s = await c.subscribe("replay.big", since={"serial": 0, "epoch": epoch})
        self.assertEqual((s["resumed"], s["replayed"]), (True, 1500), msg=repr(s))
        got = [(await c.recv_json(what=f"replayed message {i}"))["serial"] for i in range(1, 1501)]
        elapsed = time.monotonic() - start
        self.assertEqual(got, list(range(1, 1501)), msg="replay order")
        # ~1.5 MB over loopback: well under a second when the replay is pumped as writes complete.
        self.assertLess(elapsed, 5.0, msg=f"replay of 1 500 x 1 KiB with --outbound-limit 65536 took {elapsed:.1f}s")
        self.assertEqual(await self.to_thread(server.metric, "herald_slow_consumer_closes_total"), 0)
        await pub.publish("replay.big", "live", id=2000)
        await c.expect(op="message", serial=1501)

    async def test_fast_subscribers_under_load_not_closed(self):
        server = self.start_server("--outbound-limit", "65536", "--client-rate", "0")
        subs = [await self.connected_ws(server) for _ in range(3)]
        for s in subs:
            await s.subscribe("load")
        pub = await self.connected_ws(server)
        n = 2000
        for start in range(1, n + 1, 100):
            for i in range(start, start + 100):
                await pub.send_json({"op": "publish", "id": i, "channel": "load", "data": "y" * 500})
            for i in range(start, start + 100):
                await pub.expect(op="published", id=i)
        for s in subs:
            got = [(await s.recv_json(what="message under load"))["serial"] for _ in range(n)]
            self.assertEqual(got, list(range(1, n + 1)), msg="serials at a reading subscriber")
        self.assertEqual(await self.to_thread(server.metric, "herald_slow_consumer_closes_total"), 0,
                         msg="no reading subscriber should be closed as slow")


if __name__ == "__main__":
    unittest.main()
