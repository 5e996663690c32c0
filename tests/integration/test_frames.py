"""RFC 6455 framing over raw sockets after the handshake (section 5 and 7; close codes from the spec)."""
import json
import time
import unittest

from harness import (HeraldTestCase, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, close_payload,
                     encode_frame)


class FramesTest(HeraldTestCase):
    def setUp(self):
        self.server = self.start_server("--max-message-size", "1024")

    def client(self, connect=False):
        c = self.raw(self.server)
        c.handshake()
        if connect:
            c.connect_op()
        return c

    def assert_closed_with(self, code, what, send, connect=False, timeout=3.0):
        c = self.client(connect)
        send(c)
        try:
            c.expect_close(code, timeout)
        except AssertionError as e:
            raise AssertionError(f"{what}: {e}") from None
        return c

    def assert_pong(self, c, id, what):
        reply = c.recv_json(what=f"pong id {id} ({what})")
        self.assertEqual(reply, {"op": "pong", "id": id}, msg=what)

    # -- control frames ---------------------------------------------------------------------------------------

    def test_ping_frame_gets_pong_with_same_payload(self):
        c = self.client()
        c.send_frame(OP_PING, b"hello-123")
        f = c.recv_frame(what="pong frame")
        self.assertEqual((f.opcode, f.payload, f.fin), (OP_PONG, b"hello-123", True),
                         msg=f"ping 'hello-123' → expected pong with the same payload, got {f!r}")

    def test_empty_ping(self):
        c = self.client()
        c.send_frame(OP_PING, b"")
        f = c.recv_frame(what="pong frame")
        self.assertEqual((f.opcode, f.payload), (OP_PONG, b""), msg=repr(f))

    def test_unsolicited_pong_ignored(self):
        c = self.client()
        c.send_frame(OP_PONG, b"x")
        c.send_json({"op": "ping", "id": 2})
        self.assert_pong(c, 2, "after an unsolicited pong frame")

    def test_server_frames_never_masked(self):
        c = self.client(connect=True)  # connect_op already parsed one server frame
        c.send_frame(OP_PING, b"p")
        c.send_json({"op": "ping", "id": 3})
        frames = [c.recv_frame(), c.recv_frame()]
        for f in c.received:
            self.assertFalse(f.masked, msg=f"server frame masked: {f!r}")
        self.assertEqual(sorted(f.opcode for f in frames), [OP_TEXT, OP_PONG], msg=repr(frames))

    # -- protocol violations → 1002 ---------------------------------------------------------------------------

    def test_unmasked_client_frame_1002(self):
        self.assert_closed_with(1002, "unmasked text frame",
                                lambda c: c.send_frame(OP_TEXT, b'{"op":"ping"}', mask=False))

    def test_rsv_bits_1002(self):
        for rsv in (4, 2, 1):
            with self.subTest(rsv=rsv):
                self.assert_closed_with(1002, f"text frame with RSV field {rsv:03b}",
                                        lambda c: c.send_frame(OP_TEXT, b'{"op":"ping"}', rsv=rsv))

    def test_reserved_opcodes_1002(self):
        for op in (3, 7, 0xB, 0xF):
            with self.subTest(opcode=op):
                self.assert_closed_with(1002, f"reserved opcode {op}", lambda c: c.send_frame(op, b"x"))

    def test_control_frame_over_125_1002(self):
        self.assert_closed_with(1002, "ping with 126-byte payload", lambda c: c.send_frame(OP_PING, b"p" * 126))

    def test_fragmented_ping_1002(self):
        self.assert_closed_with(1002, "ping with FIN=0", lambda c: c.send_frame(OP_PING, b"p", fin=False))

    def test_continuation_without_start_1002(self):
        self.assert_closed_with(1002, "continuation frame with no message started",
                                lambda c: c.send_frame(OP_CONT, b'{"op":"ping"}'))

    def test_new_text_inside_fragmented_message_1002(self):
        def send(c):
            c.send_frame(OP_TEXT, b'{"op":', fin=False)
            c.send_frame(OP_TEXT, b'"ping"}')
        self.assert_closed_with(1002, "text frame while a fragmented message is open", send)

    # -- fragmentation ----------------------------------------------------------------------------------------

    def test_fragmented_text_with_ping_between(self):
        c = self.client()
        c.send_frame(OP_TEXT, b'{"op":"pi', fin=False)
        c.send_frame(OP_PING, b"mid")
        c.send_frame(OP_CONT, b'ng","i', fin=False)
        c.send_frame(OP_CONT, b'd":7}')
        first = c.recv_frame(what="pong frame for the interleaved ping")
        self.assertEqual((first.opcode, first.payload), (OP_PONG, b"mid"),
                         msg=f"the interleaved ping is answered first, got {first!r}")
        self.assert_pong(c, 7, "fragmented {\"op\":\"ping\",\"id\":7}")

    def test_utf8_sequence_split_across_fragments(self):
        c = self.client()
        c.send_frame(OP_TEXT, b'{"op":"ping","id":8,"x":"\xc3', fin=False)
        c.send_frame(OP_CONT, b'\xa9\xe2\x82', fin=False)
        c.send_frame(OP_CONT, b'\xac"}', fin=True)
        self.assert_pong(c, 8, "UTF-8 characters split across fragments (valid)")

    def test_invalid_utf8_in_first_fragment_fails_fast(self):
        c = self.client()
        c.send_frame(OP_TEXT, b'{"op":"ping","x":"\xff\xfe', fin=False)
        # The final fragment is never sent: the 1007 must arrive on the first fragment alone.
        c.expect_close(1007, 3.0, what="close 1007 before the final fragment was sent")

    def test_invalid_utf8_single_frame_1007(self):
        for bad in (b'"\xc0\xaf"', b'"\xed\xa0\x80"', b'"\xf4\x90\x80\x80"', b'"\xe2\x82"'):
            with self.subTest(bytes=bad):
                self.assert_closed_with(1007, f"text frame {bad!r}", lambda c: c.send_frame(OP_TEXT, bad))

    def test_binary_message_1003(self):
        self.assert_closed_with(1003, "binary message", lambda c: c.send_frame(OP_BINARY, b'{"op":"ping"}'))

    # -- size limit (--max-message-size 1024) -----------------------------------------------------------------

    def test_message_at_limit_accepted(self):
        c = self.client()
        msg = b'{"op":"ping","id":11}'
        msg = msg[:-1] + b" " * (1024 - len(msg)) + b"}"
        self.assertEqual(len(msg), 1024)
        c.send_frame(OP_TEXT, msg)
        self.assert_pong(c, 11, "a 1024-byte message with --max-message-size 1024")

    def test_big_length_header_alone_1009(self):
        c = self.client()
        c.send(encode_frame(OP_TEXT, b"", length=1_000_000)[:10] + b"\x01\x02\x03\x04")  # header + mask key only
        c.expect_close(1009, 3.0, what="close 1009 after only the header declaring 1 000 000 bytes")

    def test_1025_bytes_1009(self):
        self.assert_closed_with(1009, "1025-byte text frame", lambda c: c.send_frame(OP_TEXT, b" " * 1025))

    def test_fragmented_message_over_limit_1009(self):
        def send(c):
            c.send_frame(OP_TEXT, b" " * 600, fin=False)
            c.send_frame(OP_CONT, b" " * 600, fin=False)
        self.assert_closed_with(1009, "two fragments of 600 bytes (FIN not yet sent)", send)

    # -- close handshake --------------------------------------------------------------------------------------

    def test_close_1000_echoed_then_tcp_closed(self):
        c = self.client(connect=True)
        c.send_close(1000, "bye")
        f = c.recv_frame(what="close frame echo")
        self.assertEqual((f.opcode, f.close_code), (OP_CLOSE, 1000), msg=f"close 1000 → expected echo, got {f!r}")
        self.assertEqual(c.read_eof(3.0), b"", msg="after the close echo the server must close TCP")

    def test_close_without_payload(self):
        c = self.client()
        c.send_close(None)
        f = c.recv_frame(what="close frame reply to an empty close")
        self.assertEqual(f.opcode, OP_CLOSE, msg=repr(f))
        self.assertIn(f.close_code, (None, 1000), msg=f"reply to a code-less close: {f!r}")
        c.read_eof(3.0)

    def test_close_application_code_echoed(self):
        for code in (3000, 4000, 4999, 1001):
            with self.subTest(code=code):
                c = self.client()
                c.send_close(code, "app")
                f = c.recv_frame(what=f"close reply to close {code}")
                self.assertEqual((f.opcode, f.close_code), (OP_CLOSE, code), msg=f"close {code} → echo expected")
                c.read_eof(3.0)

    def test_close_one_byte_payload_1002(self):
        self.assert_closed_with(1002, "close frame with a 1-byte payload", lambda c: c.send_frame(OP_CLOSE, b"\x03"))

    def test_invalid_close_codes_1002(self):
        for code in (1005, 999, 1016, 5000, 1006, 1015, 0):
            with self.subTest(code=code):
                self.assert_closed_with(1002, f"close frame with code {code}", lambda c: c.send_close(code))

    def test_close_reason_invalid_utf8_1007(self):
        self.assert_closed_with(1007, "close 1000 with reason b'\\xff'",
                                lambda c: c.send_frame(OP_CLOSE, close_payload(1000) + b"\xff\xfe"))

    # -- byte streams -----------------------------------------------------------------------------------------

    def test_frame_sent_byte_at_a_time(self):
        c = self.client()
        data = encode_frame(OP_TEXT, b'{"op":"ping","id":9}')
        for i in range(len(data)):
            c.send(data[i:i + 1])
            time.sleep(0.01)
        self.assert_pong(c, 9, "frame sent one byte per TCP segment")

    def test_many_frames_in_one_send(self):
        c = self.client()
        blob = b"".join(encode_frame(OP_TEXT, json.dumps({"op": "ping", "id": i}).encode()) for i in range(1, 101))
        blob += encode_frame(OP_PING, b"last")
        c.send(blob)
        got, pongs = [], []
        while len(got) < 100 or not pongs:
            f = c.recv_frame(what=f"reply {len(got) + len(pongs) + 1} of 101 (frames sent in one write)")
            if f.opcode == OP_PONG:
                pongs.append(f.payload)
            else:
                self.assertEqual(f.opcode, OP_TEXT, msg=repr(f))
                got.append(json.loads(f.payload)["id"])
        self.assertEqual(got, list(range(1, 101)), msg="pongs for 100 pipelined pings, in order")
        self.assertEqual(pongs, [b"last"], msg="pong frame for the ping frame sent after the pipelined pings")

    def test_server_alive_after_violations(self):
        self.assert_closed_with(1002, "reserved opcode", lambda c: c.send_frame(3, b""))
        c = self.client(connect=True)
        c.send_json({"op": "ping", "id": 1})
        self.assert_pong(c, 1, "fresh connection after a protocol violation")


if __name__ == "__main__":
    unittest.main()
