// Tests for protocol/frame_parser.cpp: bytes in, an event log (or the error and its offset) out, under every split.
#include "protocol/frame_parser.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace herald {
namespace {

constexpr std::array<uint8_t, 4> kMask = {0x37, 0xfa, 0x21, 0x3d};  // the key of RFC 6455 5.7
constexpr size_t kDefaultMax = 64 * 1024;

std::string bytes(std::initializer_list<int> values) {
    std::string out;
    for (int v : values) out += static_cast<char>(v);
    return out;
}

enum class Len { Auto, Force16, Force64 };

// A masked client frame; `first` is FIN|RSV|opcode.
std::string frame(uint8_t first, std::string_view payload, Len len = Len::Auto) {
    std::string out(1, static_cast<char>(first));
    const uint64_t n = payload.size();
    if (len == Len::Auto && n < 126) {
        out += static_cast<char>(0x80 | n);
    } else if (len == Len::Force16 || (len == Len::Auto && n <= 0xFFFF)) {
        out += static_cast<char>(0x80 | 126);
        out += static_cast<char>(n >> 8);
        out += static_cast<char>(n & 0xFF);
    } else {
        out += static_cast<char>(0x80 | 127);
        for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xFF);
    }
    for (uint8_t m : kMask) out += static_cast<char>(m);
    for (size_t i = 0; i < payload.size(); ++i) out += static_cast<char>(payload[i] ^ static_cast<char>(kMask[i % 4]));
    return out;
}

std::string text(std::string_view p) { return frame(0x81, p); }
std::string text_first(std::string_view p) { return frame(0x01, p); }
std::string cont(std::string_view p) { return frame(0x00, p); }
std::string cont_final(std::string_view p) { return frame(0x80, p); }
std::string ping(std::string_view p) { return frame(0x89, p); }
std::string pong(std::string_view p) { return frame(0x8A, p); }
std::string close_payload(uint16_t code, std::string_view reason = {}) {
    return bytes({code >> 8, code & 0xFF}) + std::string(reason);
}
std::string close_frame(uint16_t code, std::string_view reason = {}) { return frame(0x88, close_payload(code, reason)); }

// Printable form of a payload; long ones as length and checksum so a failure stays readable.
std::string describe(std::string_view payload) {
    if (payload.size() > 48) {
        uint32_t h = 2166136261u;
        for (char c : payload) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
        return "<" + std::to_string(payload.size()) + " bytes fnv=" + std::to_string(h) + ">";
    }
    std::string out;
    for (char c : payload) {
        auto u = static_cast<uint8_t>(c);
        if (u >= 0x20 && u < 0x7F) {
            out += c;
        } else {
            char buf[5];
            std::snprintf(buf, sizeof buf, "\\x%02X", u);
            out += buf;
        }
    }
    return out;
}

std::string error_name(ProtocolError e) {
    switch (e) {
        case ProtocolError::FrameProtocol: return "FrameProtocol";
        case ProtocolError::InvalidUtf8: return "InvalidUtf8";
        case ProtocolError::BinaryMessage: return "BinaryMessage";
        case ProtocolError::FrameTooBig: return "FrameTooBig";
        default: return "ProtocolError#" + std::to_string(static_cast<int>(e));
    }
}
std::string error_entry(ProtocolError e, size_t at) { return "error " + error_name(e) + " @" + std::to_string(at); }

struct Recorder : FrameSink {
    std::vector<std::string> log;
    std::vector<const char*> data;  // where each delivered view pointed
    SinkResult answer = SinkResult::Continue;

    SinkResult record(std::string entry, std::string_view view) {
        log.push_back(std::move(entry));
        data.push_back(view.data());
        return answer;
    }
    SinkResult on_text(std::string_view m) override { return record("text " + describe(m), m); }
    SinkResult on_ping(std::string_view p) override { return record("ping " + describe(p), p); }
    SinkResult on_pong(std::string_view p) override { return record("pong " + describe(p), p); }
    SinkResult on_close(CloseCode code, std::string_view reason) override {
        return record("close " + std::to_string(static_cast<int>(code)) + " " + describe(reason), reason);
    }
};

// Feeds `wire` in the given piece sizes (the last one repeats); the error entry carries the absolute offset.
std::vector<std::string> run(std::string wire, const std::vector<size_t>& pieces, size_t max = kDefaultMax) {
    FrameParser parser(FrameLimits{max});
    Recorder sink;
    size_t pos = 0;
    size_t k = 0;
    while (pos < wire.size()) {
        const size_t piece = std::min(pieces[std::min(k++, pieces.size() - 1)], wire.size() - pos);
        auto result = parser.feed(std::span<char>(wire.data() + pos, piece), sink);
        if (!result) {
            sink.log.push_back(error_entry(result.error().error, pos + result.error().offset));
            break;
        }
        if (*result < piece) {
            sink.log.push_back("stopped @" + std::to_string(pos + *result));
            break;
        }
        pos += piece;
    }
    return sink.log;
}

struct Case {
    std::string name;
    std::string wire;
    std::vector<std::string> expected;
    size_t max = kDefaultMax;
};

std::string repeat(std::string_view unit, size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) out += unit;
    return out;
}

std::string pattern(size_t n) {
    std::string out(n, '\0');
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>('a' + i % 26);
    return out;
}

std::vector<Case> valid_cases() {
    const std::string p256 = pattern(256);
    const std::string p64k = pattern(65536);
    const std::string p125 = pattern(125);
    return {
        {"rfc masked Hello", bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}), {"text Hello"}},
        {"rfc fragmented Hel+lo", text_first("Hel") + cont_final("lo"), {"text Hello"}},
        {"rfc masked pong Hello", bytes({0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}),
         {"pong Hello"}},
        {"masked ping Hello", ping("Hello"), {"ping Hello"}},
        {"256-byte text, 16-bit length", frame(0x81, p256), {"text " + describe(p256)}},
        {"64 KiB text, 64-bit length, at the limit", frame(0x81, p64k), {"text " + describe(p64k)}},
        {"empty text", text(""), {"text "}},
        {"empty ping and pong", ping("") + pong(""), {"ping ", "pong "}},
        {"125-byte ping", ping(p125), {"ping " + describe(p125)}},
        {"non-minimal 16-bit length", frame(0x81, "Hello", Len::Force16), {"text Hello"}},
        {"non-minimal 64-bit length", frame(0x81, "Hello", Len::Force64), {"text Hello"}},
        {"ping between fragments", text_first("Hel") + ping("x") + cont_final("lo"), {"ping x", "text Hello"}},
        {"pong and ping between fragments", text_first("a") + pong("p") + cont("b") + ping("q") + cont_final("c"),
         {"pong p", "ping q", "text abc"}},
        {"empty fragments", text_first("") + cont("") + cont_final(""), {"text "}},
        {"character split across fragments", text_first("caf\xC3") + cont_final("\xA9"), {"text caf\\xC3\\xA9"}},
        {"4-byte character in three fragments", text_first("\xF0\x9F") + cont("\x98") + cont_final("\x80!"),
         {"text \\xF0\\x9F\\x98\\x80!"}},
        {"messages back to back", text("one") + text("two"), {"text one", "text two"}},
        {"fragmented then whole", text_first("a") + cont_final("b") + text("c"), {"text ab", "text c"}},
        {"fragmented at the limit", text_first(pattern(6)) + cont_final(pattern(4)), {"text abcdefabcd"}, 10},
    };
}

std::vector<Case> close_cases() {
    return {
        {"close without payload", frame(0x88, ""), {"close 1005 "}},
        {"close 1000 with reason", close_frame(1000, "bye"), {"close 1000 bye"}},
        {"close 1001", close_frame(1001), {"close 1001 "}},
        {"close 3000", close_frame(3000), {"close 3000 "}},
        {"close 4999", close_frame(4999), {"close 4999 "}},
        {"close with UTF-8 reason", close_frame(1000, "\xC3\xA9t\xC3\xA9"), {"close 1000 \\xC3\\xA9t\\xC3\\xA9"}},
        {"close between fragments", text_first("a") + close_frame(1000), {"close 1000 "}},
        {"nothing parsed after close", close_frame(1000) + text("after"), {"close 1000 ", "stopped @8"}},
        {"nothing parsed after close, even garbage", frame(0x88, "") + bytes({0xFF, 0xFF}),
         {"close 1005 ", "stopped @6"}},
    };
}

std::vector<Case> error_cases() {
    std::vector<Case> cases = {
        {"rfc unmasked Hello", bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}),
         {error_entry(ProtocolError::FrameProtocol, 1)}},
        {"rfc unmasked ping", bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}),
         {error_entry(ProtocolError::FrameProtocol, 1)}},
        {"rfc 256-byte binary", bytes({0x82, 0x7E, 0x01, 0x00}) + std::string(256, 'x'),
         {error_entry(ProtocolError::BinaryMessage, 0)}},
        {"rfc 64 KiB binary", bytes({0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}) + std::string(65536, 'x'),
         {error_entry(ProtocolError::BinaryMessage, 0)}},
        {"masked binary", frame(0x82, "x"), {error_entry(ProtocolError::BinaryMessage, 0)}},
        {"binary fragment starting a message", frame(0x02, "x"), {error_entry(ProtocolError::BinaryMessage, 0)}},
        {"RSV1", frame(0xC1, "x"), {error_entry(ProtocolError::FrameProtocol, 0)}},
        {"RSV2", frame(0xA1, "x"), {error_entry(ProtocolError::FrameProtocol, 0)}},
        {"RSV3", frame(0x91, "x"), {error_entry(ProtocolError::FrameProtocol, 0)}},
        {"RSV on a ping", frame(0xC9, ""), {error_entry(ProtocolError::FrameProtocol, 0)}},
        {"fragmented ping", frame(0x09, "x"), {error_entry(ProtocolError::FrameProtocol, 0)}},
        {"fragmented close", frame(0x08, ""), {error_entry(ProtocolError::FrameProtocol, 0)}},
        {"ping with 126 bytes", frame(0x89, pattern(126)), {error_entry(ProtocolError::FrameProtocol, 1)}},
        {"pong with 16-bit length", frame(0x8A, "x", Len::Force16), {error_entry(ProtocolError::FrameProtocol, 1)}},
        {"continuation without message", cont_final("x"), {error_entry(ProtocolError::FrameProtocol, 0)}},
        {"continuation after a finished message", text("a") + cont_final("b"),
         {"text a", error_entry(ProtocolError::FrameProtocol, 7)}},
        {"text inside a fragmented message", text_first("a") + text("b"),
         {error_entry(ProtocolError::FrameProtocol, 7)}},
        {"new first fragment inside a fragmented message", text_first("a") + text_first("b"),
         {error_entry(ProtocolError::FrameProtocol, 7)}},
        {"binary inside a fragmented message", text_first("a") + frame(0x82, "b"),
         {error_entry(ProtocolError::FrameProtocol, 7)}},
        {"64-bit length with the high bit set", bytes({0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1}),
         {error_entry(ProtocolError::FrameProtocol, 2)}},
        {"too big, 7-bit length", text(pattern(11)), {error_entry(ProtocolError::FrameTooBig, 1)}, 10},
        {"too big, 16-bit length", text(pattern(300)), {error_entry(ProtocolError::FrameTooBig, 3)}, 299},
        {"too big, 64-bit length", text(pattern(65537)), {error_entry(ProtocolError::FrameTooBig, 9)}},
        {"too big, header only", bytes({0x81, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0}),
         {error_entry(ProtocolError::FrameTooBig, 9)}},
        {"too big, sum of fragments", text_first(pattern(6)) + ping("p") + cont_final(pattern(5)),
         {"ping p", error_entry(ProtocolError::FrameTooBig, 20)}, 10},
        {"invalid UTF-8 byte", text("ab\xFF" "cd"), {error_entry(ProtocolError::InvalidUtf8, 8)}},
        {"overlong C0 AF", text("\xC0\xAF"), {error_entry(ProtocolError::InvalidUtf8, 6)}},
        {"overlong E0 80 AF", text("\xE0\x80\xAF"), {error_entry(ProtocolError::InvalidUtf8, 7)}},
        {"surrogate ED A0 80", text("\xED\xA0\x80"), {error_entry(ProtocolError::InvalidUtf8, 7)}},
        {"above U+10FFFF", text("\xF4\x90\x80\x80"), {error_entry(ProtocolError::InvalidUtf8, 7)}},
        {"invalid UTF-8 in the first fragment", text_first("ok\xFF") + cont_final("x"),
         {error_entry(ProtocolError::InvalidUtf8, 8)}},
        {"invalid UTF-8 in a continuation", text_first("ok") + cont_final("\x80"),
         {error_entry(ProtocolError::InvalidUtf8, 14)}},
        {"text ends inside a character", text("caf\xC3"), {error_entry(ProtocolError::InvalidUtf8, 9)}},
        {"message ends inside a character", text_first("caf\xC3") + cont_final(""),
         {error_entry(ProtocolError::InvalidUtf8, 15)}},
        {"close with 1-byte payload", frame(0x88, "\x03"), {error_entry(ProtocolError::FrameProtocol, 1)}},
        {"close reason not UTF-8", close_frame(1000, "\xFF"), {error_entry(ProtocolError::InvalidUtf8, 8)}},
        {"close reason ends inside a character", close_frame(1000, "\xC3"),
         {error_entry(ProtocolError::InvalidUtf8, 8)}},
        {"error after good frames", text("a") + ping("b") + frame(0xC1, ""),
         {"text a", "ping b", error_entry(ProtocolError::FrameProtocol, 14)}},
    };
    for (int opcode : {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
        cases.push_back({"reserved opcode " + std::to_string(opcode), frame(static_cast<uint8_t>(0x80 | opcode), "x"),
                         {error_entry(ProtocolError::FrameProtocol, 0)}});
    }
    for (int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
        cases.push_back({"close code " + std::to_string(code), close_frame(static_cast<uint16_t>(code)),
                         {error_entry(ProtocolError::FrameProtocol, 7)}});
    }
    return cases;
}

// Every vector under every split: whole, one byte at a time, small odd pieces and random partitions.
void check_all_splits(const Case& c) {
    SCOPED_TRACE("case: " + c.name);
    const std::vector<std::vector<size_t>> fixed = {{c.wire.size()}, {1}, {2}, {3}, {7}, {13}, {1, 1000000}};
    for (const auto& pieces : fixed) {
        SCOPED_TRACE("first piece sizes: " + std::to_string(pieces.front()));
        EXPECT_EQ(run(c.wire, pieces, c.max), c.expected);
    }
    std::mt19937 rng(12345);
    for (int round = 0; round < 20; ++round) {
        std::vector<size_t> pieces;
        size_t total = 0;
        while (total < c.wire.size()) {
            pieces.push_back(std::uniform_int_distribution<size_t>(1, 24)(rng));
            total += pieces.back();
        }
        SCOPED_TRACE("random round " + std::to_string(round));
        EXPECT_EQ(run(c.wire, pieces, c.max), c.expected);
    }
}

TEST(FrameParser, ValidVectorsUnderEverySplit) {
    for (const auto& c : valid_cases()) check_all_splits(c);
}

TEST(FrameParser, CloseVectorsUnderEverySplit) {
    for (const auto& c : close_cases()) check_all_splits(c);
}

TEST(FrameParser, ErrorVectorsUnderEverySplit) {
    for (const auto& c : error_cases()) check_all_splits(c);
}

TEST(FrameParser, ManyFramesInOneBuffer) {
    for (const auto& c : valid_cases()) {
        SCOPED_TRACE("case: " + c.name);
        std::vector<std::string> expected;
        for (int i = 0; i < 3; ++i) expected.insert(expected.end(), c.expected.begin(), c.expected.end());
        EXPECT_EQ(run(repeat(c.wire, 3), {3 * c.wire.size()}, c.max), expected);
        EXPECT_EQ(run(repeat(c.wire, 3), {1}, c.max), expected);
    }
    std::vector<std::string> hundred(100, "text Hello");
    EXPECT_EQ(run(repeat(text("Hello"), 100), {100 * 11}), hundred);
}

TEST(FrameParser, WholeUnfragmentedMessageIsAViewIntoTheCallersBufferUnmaskedInPlace) {
    std::string wire = text("Hello") + ping("p");
    FrameParser parser(FrameLimits{});
    Recorder sink;
    auto result = parser.feed(std::span<char>(wire), sink);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(*result, wire.size());
    ASSERT_EQ(sink.log, (std::vector<std::string>{"text Hello", "ping p"}));
    EXPECT_EQ(sink.data[0], wire.data() + 6) << "text should point into the caller's buffer, not a copy";
    EXPECT_EQ(sink.data[1], wire.data() + 11 + 6);
    EXPECT_EQ(wire.substr(6, 5), "Hello") << "payload should be unmasked in place";
    EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(FrameParser, SplitAndFragmentedMessagesAreCopied) {
    std::string wire = text_first("Hel") + cont_final("lo");
    FrameParser parser(FrameLimits{});
    Recorder sink;
    ASSERT_TRUE(parser.feed(std::span<char>(wire), sink).ok());
    ASSERT_EQ(sink.log, std::vector<std::string>{"text Hello"});
    const char* p = sink.data[0];
    EXPECT_TRUE(p < wire.data() || p >= wire.data() + wire.size()) << "a reassembled message lives in the parser";
}

TEST(FrameParser, InvalidUtf8FailsBeforeTheFrameCompletes) {
    std::string wire = text(std::string("ab\xFF") + std::string(100, 'c')).substr(0, 4 + 4 + 3);
    FrameParser parser(FrameLimits{});
    Recorder sink;
    auto result = parser.feed(std::span<char>(wire), sink);
    ASSERT_FALSE(result.ok()) << "expected InvalidUtf8 before the rest of the 103-byte payload arrived";
    EXPECT_EQ(error_name(result.error().error), "InvalidUtf8");
    EXPECT_EQ(result.error().offset, 8u);
}

TEST(FrameParser, OversizedLengthIsRefusedBeforeAnyPayloadIsBuffered) {
    std::string wire = bytes({0x81, 0xFF, 0, 0, 0, 0, 0x40, 0, 0, 0});  // declares 1 GiB
    FrameParser parser(FrameLimits{});
    Recorder sink;
    auto result = parser.feed(std::span<char>(wire), sink);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(error_name(result.error().error), "FrameTooBig");
    EXPECT_EQ(result.error().offset, 9u);
    EXPECT_LE(parser.buffered_bytes(), 14u);
}

TEST(FrameParser, ErrorsAreStickyWithTheirOffset) {
    std::string bad = text("a") + frame(0xC1, "x");
    FrameParser parser(FrameLimits{});
    Recorder sink;
    auto first = parser.feed(std::span<char>(bad), sink);
    ASSERT_FALSE(first.ok());
    EXPECT_EQ(first.error().offset, 7u);
    std::string good = text("b");
    auto second = parser.feed(std::span<char>(good), sink);
    ASSERT_FALSE(second.ok()) << "a failed parser must stay failed";
    EXPECT_EQ(error_name(second.error().error), "FrameProtocol");
    EXPECT_EQ(second.error().offset, 7u);
    EXPECT_EQ(second.error().detail, first.error().detail);
    EXPECT_EQ(sink.log, std::vector<std::string>{"text a"});
}

TEST(FrameParser, ErrorDetailNamesTheRule) {
    std::string wire = bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f});
    FrameParser parser(FrameLimits{});
    Recorder sink;
    auto result = parser.feed(std::span<char>(wire), sink);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().detail, "unmasked client frame");
}

TEST(FrameParser, NothingIsParsedAfterClose) {
    std::string wire = close_frame(1000, "bye") + text("late");
    FrameParser parser(FrameLimits{});
    Recorder sink;
    auto result = parser.feed(std::span<char>(wire), sink);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(*result, 11u) << "consumed up to the end of the close frame";
    EXPECT_TRUE(parser.closed());
    std::string more = text("x");
    auto again = parser.feed(std::span<char>(more), sink);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, 0u);
    EXPECT_EQ(sink.log, std::vector<std::string>{"close 1000 bye"});
}

TEST(FrameParser, SinkStopEndsTheFeedAfterThatEvent) {
    std::string wire = text("one") + ping("p") + text("two");
    FrameParser parser(FrameLimits{});
    Recorder sink;
    sink.answer = SinkResult::Stop;
    size_t pos = 0;
    std::vector<size_t> consumed;
    while (pos < wire.size()) {
        auto result = parser.feed(std::span<char>(wire.data() + pos, wire.size() - pos), sink);
        ASSERT_TRUE(result.ok());
        consumed.push_back(*result);
        pos += *result;
    }
    EXPECT_EQ(consumed, (std::vector<size_t>{9, 7, 9}));
    EXPECT_EQ(sink.log, (std::vector<std::string>{"text one", "ping p", "text two"}));
}

TEST(FrameParser, BufferedBytesAndShrinkIdle) {
    FrameParser parser(FrameLimits{});
    Recorder sink;
    const std::string big = pattern(4000);
    std::string wire = text_first(big) + cont_final("!");
    const size_t first_frame = wire.size() - 7;

    auto r1 = parser.feed(std::span<char>(wire.data(), 1), sink);
    ASSERT_TRUE(r1.ok());
    EXPECT_EQ(parser.buffered_bytes(), 1u) << "one header byte held";

    auto r2 = parser.feed(std::span<char>(wire.data() + 1, first_frame - 1), sink);
    ASSERT_TRUE(r2.ok());
    EXPECT_EQ(parser.buffered_bytes(), 4000u) << "first fragment held for reassembly";
    const size_t empty_capacity = std::string().capacity() * 2;
    parser.shrink_idle();
    EXPECT_EQ(parser.buffered_bytes(), 4000u) << "shrink_idle must keep pending data";

    auto r3 = parser.feed(std::span<char>(wire.data() + first_frame, 7), sink);
    ASSERT_TRUE(r3.ok());
    EXPECT_EQ(sink.log, std::vector<std::string>{"text " + describe(big + "!")});
    EXPECT_EQ(parser.buffered_bytes(), 0u);
    EXPECT_GT(parser.buffer_capacity(), empty_capacity);
    parser.shrink_idle();
    EXPECT_EQ(parser.buffer_capacity(), empty_capacity);

    std::string after = text("ok");
    auto r4 = parser.feed(std::span<char>(after), sink);
    ASSERT_TRUE(r4.ok());
    EXPECT_EQ(sink.log.back(), "text ok");
}

TEST(FrameParser, EmptyFeedConsumesNothing) {
    FrameParser parser(FrameLimits{});
    Recorder sink;
    auto result = parser.feed(std::span<char>(), sink);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(*result, 0u);
    EXPECT_TRUE(sink.log.empty());
}

}  // namespace
}  // namespace herald
