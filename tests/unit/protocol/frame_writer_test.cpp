// Tests for protocol/frame_writer.cpp: exact bytes for each length form and close-frame truncation.
#include "protocol/frame_writer.h"

#include <gtest/gtest.h>

#include <string>

#include "protocol/utf8.h"

namespace herald {
namespace {

std::string bytes(std::initializer_list<int> values) {
    std::string out;
    for (int v : values) out += static_cast<char>(v);
    return out;
}

std::string hex(std::string_view s) {
    std::string out;
    char buf[4];
    for (char c : s) {
        std::snprintf(buf, sizeof buf, "%02x ", static_cast<uint8_t>(c));
        out += buf;
    }
    return out;
}

TEST(FrameWriter, RfcUnmaskedHello) {
    EXPECT_EQ(hex(encode_text_frame("Hello")), hex(bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f})));
}

TEST(FrameWriter, RfcUnmaskedPing) {
    EXPECT_EQ(hex(encode_frame(Opcode::Ping, "Hello")), hex(bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f})));
}

TEST(FrameWriter, OpcodesAndFin) {
    EXPECT_EQ(hex(encode_frame(Opcode::Pong, "")), hex(bytes({0x8A, 0x00})));
    EXPECT_EQ(hex(encode_frame(Opcode::Binary, "x")), hex(bytes({0x82, 0x01, 'x'})));
    EXPECT_EQ(hex(encode_frame(Opcode::Close, "")), hex(bytes({0x88, 0x00})));
}

TEST(FrameWriter, LengthForms) {
    struct Case {
        size_t length;
        std::string header;
    };
    const Case cases[] = {
        {0, bytes({0x81, 0x00})},
        {125, bytes({0x81, 0x7D})},
        {126, bytes({0x81, 0x7E, 0x00, 0x7E})},
        {256, bytes({0x81, 0x7E, 0x01, 0x00})},  // RFC 6455 5.7's 256-byte form
        {65535, bytes({0x81, 0x7E, 0xFF, 0xFF})},
        {65536, bytes({0x81, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0})},  // RFC 6455 5.7's 64 KiB form
        {70000, bytes({0x81, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70})},
    };
    for (const auto& c : cases) {
        const std::string payload(c.length, 'p');
        const std::string frame = encode_text_frame(payload);
        SCOPED_TRACE("payload length " + std::to_string(c.length));
        EXPECT_EQ(frame_header_size(c.length), c.header.size());
        ASSERT_EQ(frame.size(), c.header.size() + c.length);
        EXPECT_EQ(hex(frame.substr(0, c.header.size())), hex(c.header));
        EXPECT_EQ(frame.substr(c.header.size()), payload);
    }
}

TEST(FrameWriter, CloseWithCodeAndReason) {
    EXPECT_EQ(hex(encode_close_frame(CloseCode::Normal, "bye")), hex(bytes({0x88, 0x05, 0x03, 0xE8, 'b', 'y', 'e'})));
    EXPECT_EQ(hex(encode_close_frame(CloseCode::SlowConsumer)), hex(bytes({0x88, 0x02, 0x0F, 0xA8})));
}

TEST(FrameWriter, CloseNoStatusHasEmptyPayload) {
    EXPECT_EQ(hex(encode_close_frame(CloseCode::NoStatus, "ignored")), hex(bytes({0x88, 0x00})));
}

TEST(FrameWriter, CloseReasonTruncatedToControlFrameLimit) {
    const std::string frame = encode_close_frame(CloseCode::GoingAway, std::string(200, 'r'));
    ASSERT_EQ(frame.size(), 2u + 125u);
    EXPECT_EQ(static_cast<uint8_t>(frame[1]), 125);
    EXPECT_EQ(frame.substr(4), std::string(123, 'r'));
}

TEST(FrameWriter, CloseReasonTruncatedAtACharacterBoundary) {
    std::string reason;
    for (int i = 0; i < 100; ++i) reason += "\xC3\xA9";  // 'é', 200 bytes: 123 would split the 62nd character
    const std::string frame = encode_close_frame(CloseCode::Normal, reason);
    const std::string kept = frame.substr(4);
    EXPECT_EQ(kept.size(), 122u);
    EXPECT_TRUE(is_valid_utf8(kept)) << "reason cut inside a character: " << hex(kept.substr(kept.size() - 4));
    EXPECT_EQ(static_cast<uint8_t>(frame[1]), 124);

    std::string four;
    for (int i = 0; i < 40; ++i) four += "\xF0\x9F\x98\x80";  // 160 bytes of 4-byte characters
    const std::string kept4 = encode_close_frame(CloseCode::Normal, four).substr(4);
    EXPECT_EQ(kept4.size(), 120u);
    EXPECT_TRUE(is_valid_utf8(kept4));
}

TEST(FrameWriter, ShortReasonKeptWhole) {
    const std::string reason(123, 'x');
    EXPECT_EQ(encode_close_frame(CloseCode::Normal, reason).substr(4), reason);
}

}  // namespace
}  // namespace herald
