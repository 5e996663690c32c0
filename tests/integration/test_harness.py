"""Self-test of the harness' frame encoder/decoder and handshake math against RFC 6455 (no server needed)."""
import unittest

from harness import (OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT, OP_CLOSE, close_payload, decode_frame,
                     encode_frame, parse_metrics, metric_value, ws_accept)

KEY = bytes.fromhex("37fa213d")


class FrameEncoderRfcExamples(unittest.TestCase):
    """RFC 6455 section 5.7."""

    def test_single_frame_unmasked_text(self):
        self.assertEqual(encode_frame(OP_TEXT, b"Hello", mask=False), bytes.fromhex("810548656c6c6f"))

    def test_single_frame_masked_text(self):
        self.assertEqual(encode_frame(OP_TEXT, b"Hello", mask_key=KEY), bytes.fromhex("818537fa213d7f9f4d5158"))

    def test_fragmented_unmasked_text(self):
        self.assertEqual(encode_frame(OP_TEXT, b"Hel", fin=False, mask=False), bytes.fromhex("010348656c"))
        self.assertEqual(encode_frame(OP_CONT, b"lo", mask=False), bytes.fromhex("80026c6f"))

    def test_unmasked_ping_and_masked_pong(self):
        self.assertEqual(encode_frame(OP_PING, b"Hello", mask=False), bytes.fromhex("890548656c6c6f"))
        self.assertEqual(encode_frame(OP_PONG, b"Hello", mask_key=KEY), bytes.fromhex("8a8537fa213d7f9f4d5158"))

    def test_extended_lengths(self):
        self.assertEqual(encode_frame(OP_BINARY, b"\0" * 256, mask=False)[:4], bytes.fromhex("827e0100"))
        self.assertEqual(encode_frame(OP_BINARY, b"\0" * 65536, mask=False)[:10],
                         bytes.fromhex("827f0000000000010000"))
        self.assertEqual(encode_frame(OP_TEXT, b"", mask=False, length=1 << 20)[:10],
                         bytes.fromhex("817f0000000000100000"))

    def test_rsv_and_close(self):
        self.assertEqual(encode_frame(OP_TEXT, b"", mask=False, rsv=4), bytes.fromhex("c100"))
        self.assertEqual(close_payload(1000, "ok"), bytes.fromhex("03e86f6b"))
        self.assertEqual(encode_frame(OP_CLOSE, close_payload(1000), mask=False), bytes.fromhex("880203e8"))


class FrameDecoder(unittest.TestCase):
    def test_round_trip(self):
        for n in (0, 1, 125, 126, 127, 65535, 65536, 70000):
            payload = bytes(i % 251 for i in range(n))
            for mask in (False, True):
                data = encode_frame(OP_BINARY, payload, mask=mask)
                frame, used = decode_frame(bytearray(data + b"extra"))
                self.assertEqual(used, len(data), msg=f"n={n} mask={mask}")
                self.assertEqual(frame.payload, payload, msg=f"n={n} mask={mask}")
                self.assertEqual(frame.masked, mask)
                self.assertEqual(frame.opcode, OP_BINARY)
                self.assertTrue(frame.fin)
                for cut in (1, 2, len(data) - 1):
                    if 0 <= cut < len(data):
                        self.assertEqual(decode_frame(bytearray(data[:cut]))[0], None, msg=f"n={n} cut={cut}")

    def test_close_code(self):
        frame, _ = decode_frame(bytearray(bytes.fromhex("880203ea")))
        self.assertEqual(frame.close_code, 1002)


class Handshake(unittest.TestCase):
    def test_rfc_sample_key(self):  # RFC 6455 section 1.3
        self.assertEqual(ws_accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")


class Metrics(unittest.TestCase):
    def test_parse(self):
        text = ('# HELP x y\n# TYPE herald_connections gauge\nherald_connections 3\n'
                'herald_connections_closed_total{code="1000"} 2\nherald_connections_closed_total{code="4008"} 1\n'
                'herald_publish_to_write_seconds_bucket{le="+Inf"} 5\n')
        s = parse_metrics(text)
        self.assertEqual(metric_value(s, "herald_connections"), 3)
        self.assertEqual(metric_value(s, "herald_connections_closed_total"), 3)
        self.assertEqual(metric_value(s, "herald_connections_closed_total", code=4008), 1)
        self.assertEqual(metric_value(s, "herald_publish_to_write_seconds_bucket", le="+Inf"), 5)


if __name__ == "__main__":
    unittest.main()
