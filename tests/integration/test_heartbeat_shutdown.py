"""Heartbeat pings and timeouts; graceful shutdown on SIGTERM/SIGINT."""
import signal
import time
import unittest

from harness import (AsyncHeraldTestCase, HeraldTestCase, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, http_request)


class HeartbeatTest(HeraldTestCase):
    def setUp(self):
        self.server = self.start_server("--heartbeat", "1")

    def test_silent_client_closed(self):
        c = self.raw(self.server)
        c.handshake()
        reply = c.connect_op()
        self.assertEqual(reply["heartbeat"], 1, msg=f"connected.heartbeat with --heartbeat 1: {reply}")
        start = time.monotonic()
        pings, end = 0, None
        while end is None:
            f = c.next_frame_or_eof(6.0, "pings, then the heartbeat close")
            if f is None:
                end = ("tcp-close", None)
            elif f.opcode == OP_PING:
                pings += 1  # never answered
            elif f.opcode == OP_CLOSE:
                end = ("close", f.close_code)
            else:
                self.fail(f"unexpected frame while silent: {f!r}")
        elapsed = time.monotonic() - start
        if end[0] == "close":
            self.assertEqual(end[1], 1008, msg="heartbeat timeout close code")
        self.assertLessEqual(elapsed, 3.5, msg=f"silent client (--heartbeat 1) closed after {elapsed:.2f}s")
        self.assertGreaterEqual(elapsed, 1.5, msg=f"closed after only {elapsed:.2f}s; silence limit is 2 s")
        self.assertGreaterEqual(pings, 1, msg="the node should have pinged the silent client before closing it")

    def test_commands_count_as_activity(self):
        # Ping frames go unanswered, but a `ping` command every 0.5 s is activity: the connection stays.
        c = self.raw(self.server)
        c.handshake()
        c.connect_op()
        start = time.monotonic()
        i = 0
        while time.monotonic() - start < 4.0:
            i += 1
            c.send_json({"op": "ping", "id": i})
            while True:
                f = c.next_frame_or_eof(2.0, f"pong {i}")
                self.assertIsNotNone(f, msg=f"TCP closed after {time.monotonic() - start:.2f}s although a command "
                                            f"arrived every 0.5 s")
                self.assertNotEqual(f.opcode, OP_CLOSE, msg=f"closed after {time.monotonic() - start:.2f}s although"
                                                            f" a command arrived every 0.5 s: {f!r}")
                if f.opcode == OP_TEXT:
                    self.assertEqual(f.text(), '{"op":"pong","id":%d}' % i)
                    break
            time.sleep(0.5)

    def test_server_pings_idle_connection_every_second(self):
        c = self.raw(self.server)
        c.handshake()
        c.connect_op()
        start = time.monotonic()
        times = []
        while time.monotonic() - start < 4.2:
            f = c.next_frame_or_eof(2.0, "a heartbeat ping")
            self.assertIsNotNone(f, msg=f"connection closed though every ping was answered (pings at {times})")
            self.assertNotEqual(f.opcode, OP_CLOSE, msg=f"closed though every ping was answered: {f!r}")
            if f.opcode == OP_PING:
                times.append(round(time.monotonic() - start, 2))
                c.send_frame(OP_PONG, f.payload)
        self.assertTrue(3 <= len(times) <= 6, msg=f"pings in 4.2 s with --heartbeat 1 at {times}")
        c.send_json({"op": "ping", "id": 1})
        reply = c.recv_json(what="pong after 4 s of heartbeats")
        self.assertEqual(reply, {"op": "pong", "id": 1})


class HeartbeatWebsocketsTest(AsyncHeraldTestCase):
    async def test_client_answering_pings_stays(self):
        server = self.start_server("--heartbeat", "1")
        c = await self.ws(server)  # websockets answers pings by itself; it sends none of its own
        reply = await c.connect()
        self.assertEqual(reply["heartbeat"], 1)
        await c.expect_silence(4.0)
        await c.ping()


class ShutdownTest(AsyncHeraldTestCase):
    async def test_sigterm_closes_clients_1001_and_exits_0(self):
        server = self.start_server("--drain-timeout", "5")
        clients = [await self.connected_ws(server) for _ in range(3)]
        for c in clients:
            await c.subscribe("sd")
        raw = self.raw(server)
        raw.handshake()
        raw.connect_op()
        start = time.monotonic()
        server.terminate()
        for i, c in enumerate(clients):
            code = await c.expect_closed(5.0)
            self.assertEqual(code, 1001, msg=f"websockets client {i} close code on SIGTERM")
        await self.to_thread(lambda: raw.expect_close(1001, 5.0))
        rc = await self.to_thread(server.wait_exit, 7.0)
        elapsed = time.monotonic() - start
        self.assertEqual(rc, 0, msg=f"exit status after SIGTERM (elapsed {elapsed:.2f}s)\n{server.stderr_tail()}")
        self.assertLess(elapsed, 5.0, msg="all clients answered the close: exit before the drain timeout")

    async def test_readyz_draining_and_drain_timeout(self):
        server = self.start_server("--drain-timeout", "3")
        stubborn = self.raw(server)
        stubborn.handshake()
        stubborn.connect_op()
        start = time.monotonic()
        server.terminate()
        f = await self.to_thread(lambda: stubborn.recv_frame(5.0, "close 1001 after SIGTERM"))
        self.assertEqual((f.opcode, f.close_code), (OP_CLOSE, 1001), msg=repr(f))
        # The stubborn client does not answer the close, so the node is still draining now.
        try:
            r = await self.to_thread(http_request, server.port, "GET", "/readyz")
            got = (r.status, r.body)
        except OSError as e:
            got = f"request failed: {e!r}"
        still_running = server.alive()
        self.assertTrue(still_running, msg="expected the node still draining while a client has not closed")
        self.assertEqual(got, (503, b"draining\n"), msg="GET /readyz during shutdown")
        rc = await self.to_thread(server.wait_exit, 3 + 3)
        elapsed = time.monotonic() - start
        self.assertEqual(rc, 0, msg=f"exit status with an unresponsive client (elapsed {elapsed:.2f}s)\n"
                                    f"{server.stderr_tail()}")
        self.assertLess(elapsed, 3 + 1.5, msg="exit within --drain-timeout 3 (+ margin)")

    async def test_idle_sigterm_quick(self):
        server = self.start_server()
        start = time.monotonic()
        server.terminate()
        rc = await self.to_thread(server.wait_exit, 5)
        self.assertEqual(rc, 0, msg=server.stderr_tail())
        self.assertLess(time.monotonic() - start, 1.5, msg="an idle node should exit promptly on SIGTERM")

    async def test_sigint_like_sigterm(self):
        server = self.start_server()
        c = await self.connected_ws(server)
        server.proc.send_signal(signal.SIGINT)
        self.assertEqual(await c.expect_closed(5.0), 1001, msg="close code on SIGINT")
        rc = await self.to_thread(server.wait_exit, 5)
        self.assertEqual(rc, 0, msg=f"exit status after SIGINT\n{server.stderr_tail()}")


if __name__ == "__main__":
    unittest.main()
