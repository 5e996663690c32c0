"""Malformed commands get {"op":"error"} with the right code and the connection stays open."""
import json
import random
import unittest

from harness import AsyncHeraldTestCase, http_request


class MessageTooLargeTest(AsyncHeraldTestCase):
    async def test_publish_growing_past_limit_after_encoding(self):
        # 1e2 re-encodes longer (e.g. 100.0): a 1 000-byte command whose data encodes past the 1 024-byte limit.
        server = self.start_server("--max-message-size", "1024")
        sub = await self.connected_ws(server)
        await sub.subscribe("grow")
        c = await self.connected_ws(server)
        text = '{"op":"publish","id":4,"channel":"grow","data":[' + ",".join(["1e2"] * 235) + "]}"
        self.assertLessEqual(len(text), 1024)
        await c.send_text(text)
        reply = await c.recv_json(what="reply to a publish whose data grows past the limit when re-encoded")
        if reply.get("op") == "published":
            m = await sub.recv_text(what="the delivered message")
            self.assertLessEqual(len(m.encode()), 1024,
                                 msg=f"published, but the delivered message is {len(m.encode())} bytes, over "
                                     f"--max-message-size 1024 (expected error message_too_large instead)")
        else:
            self.assertEqual((reply.get("op"), reply.get("id"), reply.get("code")),
                             ("error", 4, "message_too_large"), msg=repr(reply))
            await sub.expect_silence(0.2)
        await c.ping()


class BadInputTest(AsyncHeraldTestCase):
    def setUp(self):
        # Room for the 200 000-byte deep-nesting message below.
        self.server = self.start_server("--max-message-size", "1M")

    async def assert_error(self, c, text, code, id=None, what=None):
        what = what or f"{text[:80]!r}"
        await c.send_text(text)
        reply = await c.recv_json(what=f"error {code} for {what}")
        self.assertEqual(reply.get("op"), "error", msg=f"{what}: expected an error {code}, got {reply}")
        self.assertEqual(reply.get("code"), code, msg=f"{what}: error code; reply {reply}")
        self.assertIsInstance(reply.get("message"), str, msg=f"{what}: error needs a message: {reply}")
        if id is None:
            self.assertNotIn("id", reply, msg=f"{what}: no usable id, so the error must not carry one: {reply}")
        else:
            self.assertEqual(reply.get("id"), id, msg=f"{what}: id must be echoed: {reply}")
        await c.ping(id=4242)

    async def test_not_json(self):
        c = await self.connected_ws(self.server)
        for text in ('{"op":', "hello", "", "{'op':'ping'}", '{"op":"ping"} trailing', '{"op":"ping",}', "\u00e9"):
            with self.subTest(text=text):
                await self.assert_error(c, text, "bad_request")

    async def test_not_an_object(self):
        c = await self.connected_ws(self.server)
        for text in ("[1,2]", '"ping"', "42", "null", "true", '[{"op":"ping"}]'):
            with self.subTest(text=text):
                await self.assert_error(c, text, "bad_request")

    async def test_op_problems(self):
        c = await self.connected_ws(self.server)
        await self.assert_error(c, '{"op":"dance","id":3}', "unknown_op", id=3)
        await self.assert_error(c, '{"op":"PING","id":4}', "unknown_op", id=4, what="op is case-sensitive")
        await self.assert_error(c, '{"id":5}', "bad_request", id=5, what="missing op")
        await self.assert_error(c, '{"op":5,"id":6}', "bad_request", id=6, what="op a number")
        await self.assert_error(c, '{"op":null}', "bad_request", what="op null")

    async def test_id_not_an_integer(self):
        c = await self.connected_ws(self.server)
        for bad in ('"7"', "1.5", "true", "null", "[1]", "{}", "1e400"):
            with self.subTest(id=bad):
                await self.assert_error(c, '{"op":"ping","id":%s}' % bad, "bad_request", what=f"id {bad}")

    async def test_usable_ids(self):
        c = await self.connected_ws(self.server)
        for text, want in (('{"op":"ping","id":7.0}', 7), ('{"op":"ping","id":-3}', -3),
                           ('{"op":"ping","id":9223372036854775807}', 9223372036854775807),
                           ('{"op":"ping","id":-9223372036854775808}', -9223372036854775808),
                           ('{"op":"ping","id":1,"id":2}', 2), ('{"op":"ping","id":3,"extra":{"x":[1]}}', 3)):
            with self.subTest(text=text):
                await c.send_text(text)
                self.assertEqual(await c.recv_json(what=f"pong for {text}"), {"op": "pong", "id": want},
                                 msg=f"{text}: usable id")
        for bad in ("9223372036854775808", "-9223372036854775809", "18446744073709551616", "-1e19"):
            with self.subTest(id=bad):
                await self.assert_error(c, '{"op":"ping","id":%s}' % bad, "bad_request",
                                        what=f"id {bad} (outside signed 64-bit)")

    async def test_null_is_not_absent(self):
        c = await self.connected_ws(self.server)
        for i, cmd in enumerate([{"op": "subscribe", "channel": "n", "since": None},
                                 {"op": "history", "channel": "n", "limit": None},
                                 {"op": "history", "channel": "n", "since": None},
                                 {"op": "publish", "channel": "n", "data": 1, "key": None},
                                 {"op": "subscribe", "channel": None}], start=1):
            with self.subTest(cmd=cmd):
                await self.assert_error(c, json.dumps({**cmd, "id": i}), "bad_request", id=i, what=f"{cmd}")
        p = await c.publish("n", None, id=20)
        self.assertEqual(p["serial"], 1, msg="publish data null is valid")

    async def test_integer_range(self):
        c = await self.connected_ws(self.server)
        await c.send_json({"op": "history", "id": 1, "channel": "range", "since": 18446744073709551615})
        r = await c.expect(op="history", id=1)
        self.assertEqual(r["messages"], [], msg="since 2^64-1 is a valid serial")
        await self.assert_error(c, '{"op":"history","id":2,"channel":"range","since":18446744073709551616}',
                                "bad_request", id=2, what="since 2^64")
        await self.assert_error(c, '{"op":"history","id":3,"channel":"range","limit":1.5}', "bad_request", id=3,
                                what="limit 1.5")

    async def test_positions_with_invalid_channel(self):
        c = await self.ws(self.server)
        await self.assert_error(c, json.dumps({"op": "connect", "id": 1,
                                               "positions": {"bad channel": {"serial": 1, "epoch": "e"}}}),
                                "invalid_channel", id=1, what="positions key 'bad channel'")

    async def test_channel_names(self):
        c = await self.connected_ws(self.server)
        for i, (channel, what) in enumerate([("", "empty"), ("x" * 256, "256 chars"), ("a b", "space"),
                                             ("a#b", "#"), ("ä", "non-ASCII"), ("a\nb", "newline"),
                                             ("a*", "*"), ("a\u0000b", "NUL")], start=10):
            with self.subTest(what):
                await self.assert_error(c, json.dumps({"op": "subscribe", "id": i, "channel": channel}),
                                        "invalid_channel", id=i, what=f"subscribe to a channel: {what}")
        for i, op in enumerate(("unsubscribe", "publish", "history"), start=30):
            cmd = {"op": op, "id": i, "channel": "bad channel"}
            if op == "publish":
                cmd["data"] = 1
            await self.assert_error(c, json.dumps(cmd), "invalid_channel", id=i, what=f"{op} on 'bad channel'")
        ok = "Az09_.:@/=-" + "x" * 244
        self.assertEqual(len(ok), 255)
        s = await c.subscribe(ok, id=50)
        self.assertEqual(s["channel"], ok, msg="a 255-char channel of every allowed character is valid")

    async def test_wrong_field_types(self):
        c = await self.connected_ws(self.server)
        cases = [
            ({"op": "subscribe", "id": 1, "channel": 5}, "channel a number"),
            ({"op": "subscribe", "id": 2}, "channel missing"),
            ({"op": "subscribe", "id": 3, "channel": "c", "since": "5"}, "since a string"),
            ({"op": "subscribe", "id": 4, "channel": "c", "since": {"serial": "5", "epoch": "e"}}, "since.serial"),
            ({"op": "subscribe", "id": 5, "channel": "c", "since": {"serial": -1, "epoch": "e"}}, "since.serial<0"),
            ({"op": "subscribe", "id": 6, "channel": "c", "since": {"serial": 1, "epoch": 7}}, "since.epoch"),
            ({"op": "history", "id": 7, "channel": "c", "limit": -1}, "limit negative"),
            ({"op": "history", "id": 8, "channel": "c", "limit": "10"}, "limit a string"),
            ({"op": "history", "id": 9, "channel": "c", "since": "abc"}, "history since a string"),
            ({"op": "history", "id": 10, "channel": "c", "since": -5}, "history since negative"),
            ({"op": "publish", "id": 11, "channel": "c"}, "publish without data"),
            ({"op": "publish", "id": 12, "channel": "c", "data": 1, "key": 5}, "key a number"),
            ({"op": "publish", "id": 13, "channel": "c", "data": 1, "key": ""}, "empty key"),
            ({"op": "publish", "id": 14, "channel": "c", "data": 1, "key": "k" * 129}, "129-char key"),
            ({"op": "unsubscribe", "id": 15, "channel": ["c"]}, "channel an array"),
            ({"op": "connect", "id": 16}, "second connect"),
        ]
        for cmd, what in cases:
            with self.subTest(what):
                code = "already_connected" if cmd["op"] == "connect" else "bad_request"
                await self.assert_error(c, json.dumps(cmd), code, id=cmd["id"], what=what)

    async def test_bad_connect_fields(self):
        for i, (cmd, what) in enumerate([({"session": 5}, "session a number"),
                                          ({"positions": []}, "positions an array"),
                                          ({"positions": {"c": 5}}, "position a number"),
                                          ({"positions": {"c": {"serial": "x", "epoch": "e"}}}, "serial string")]):
            with self.subTest(what):
                c = await self.ws(self.server)
                await self.assert_error(c, json.dumps({"op": "connect", "id": i, **cmd}), "bad_request", id=i,
                                        what=f"connect with {what}")
                await c.connect(id=100)  # still possible afterwards

    async def test_lone_surrogate_escape(self):
        # "\ud800" is valid JSON syntax but no Unicode scalar value: refused, or delivered as valid UTF-8.
        c = await self.connected_ws(self.server)
        sub = await self.connected_ws(self.server)
        await sub.subscribe("sur")
        await c.send_text('{"op":"publish","id":4,"channel":"sur","data":"a\\ud800b"}')
        reply = await c.recv_json(what="reply to a publish with a lone surrogate escape")
        self.assertIn((reply.get("op"), reply.get("code")), (("published", None), ("error", "bad_request")),
                      msg=repr(reply))
        if reply["op"] == "published":
            # websockets closes with 1007 if the node forwards invalid UTF-8.
            await sub.expect(op="message", channel="sur")
        await sub.ping()
        await c.ping()

    async def test_random_garbage(self):
        c = await self.connected_ws(self.server)
        rng = random.Random(6455)
        alphabet = "{}[]\":,0123456789.eE+-truefalsn \\/abcxyz\u00e9\u2603\U0001F600\t\n"
        texts = []
        for _ in range(200):
            n = rng.randint(1, 300)
            texts.append("".join(rng.choice(alphabet) for _ in range(n)))
        for t in texts:
            await c.send_text(t)
        for i, t in enumerate(texts):
            reply = await c.recv_json(what=f"reply {i + 1} of 200 to garbage {t[:60]!r}")
            self.assertEqual(reply.get("op"), "error", msg=f"garbage {t[:80]!r} → {reply}")
        await c.ping()
        r = await self.to_thread(http_request, self.server.port, "GET", "/healthz")
        self.assertEqual(r.status, 200, msg=repr(r))

    async def test_deep_nesting(self):
        c = await self.connected_ws(self.server)
        depth = 100_000
        await c.send_text("[" * depth + "]" * depth)
        reply = await c.recv_json(15, what="reply to a 100 000-level nested array")
        self.assertEqual((reply.get("op"), reply.get("code")), ("error", "bad_request"), msg=repr(reply))
        await c.ping()
        # Deep nesting inside a valid command's data: published (and re-serialised) or refused — never a crash.
        await c.subscribe("deep", id=2)
        await c.send_text('{"op":"publish","id":3,"channel":"deep","data":' + "[" * depth + "]" * depth + "}")
        reply = await c.recv_json(15, what="reply to a publish of 100 000-level nested data")
        self.assertIn(reply.get("op"), ("published", "error", "message"), msg=repr(reply))
        await c.send_text('{"op":"ping","id":77,"x":' + '{"a":' * 50_000 + "1" + "}" * 50_000 + "}")
        for _ in range(3):
            reply = await c.recv_json(15, what="pong 77 after deep objects")
            if reply.get("op") not in ("published", "message"):
                break
        self.assertIn(reply.get("op"), ("pong", "error"), msg=f"ping with 50 000 nested objects: {reply}")
        await c.ping()
        r = await self.to_thread(http_request, self.server.port, "GET", "/healthz")
        self.assertEqual(r.status, 200, msg=f"healthz after deep nesting: {r!r}")
        self.assertTrue(self.server.alive(), msg="herald died:\n" + self.server.stderr_tail())


if __name__ == "__main__":
    unittest.main()
