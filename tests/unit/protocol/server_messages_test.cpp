// Tests for protocol/server_messages.cpp: exact bytes for every message (key order and omissions are part of the
// wire format), JSON escaping of free text, and that every output parses back as JSON.
#include "protocol/server_messages.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace herald {
namespace {

struct EncodeCase {
    std::string name;
    std::string got;
    std::string expected;
};

ConnectedReply connected(RequestId id, std::string session, std::string node, uint32_t heartbeat, bool resumed) {
    ConnectedReply r;
    r.id = id;
    r.session = std::move(session);
    r.node = std::move(node);
    r.heartbeat_seconds = heartbeat;
    r.resumed = resumed;
    return r;
}

SubscribedReply subscribed(RequestId id, std::string channel, uint64_t serial, std::string epoch, bool resumed,
                           uint64_t replayed, std::optional<std::string> reason) {
    SubscribedReply r;
    r.id = id;
    r.channel = std::move(channel);
    r.serial = serial;
    r.epoch = std::move(epoch);
    r.resumed = resumed;
    r.replayed = replayed;
    r.reason = std::move(reason);
    return r;
}

HistoryReply history(RequestId id, std::string channel, std::string epoch, uint64_t serial,
                     std::vector<HistoryEntry> messages) {
    HistoryReply r;
    r.id = id;
    r.channel = std::move(channel);
    r.epoch = std::move(epoch);
    r.serial = serial;
    r.messages = std::move(messages);
    return r;
}

DiscontinuityNotice discontinuity(std::string channel, std::string epoch, uint64_t serial, std::string reason) {
    DiscontinuityNotice n;
    n.channel = std::move(channel);
    n.epoch = std::move(epoch);
    n.serial = serial;
    n.reason = std::move(reason);
    return n;
}

std::vector<EncodeCase> encode_cases() {
    constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
    return {
        {"connected", encode_connected(connected(1, "0123456789abcdef0123456789abcdef", "n1", 25, false)),
         R"({"op":"connected","id":1,"session":"0123456789abcdef0123456789abcdef","node":"n1","heartbeat":25,)"
         R"("resumed":false})"},
        {"connected resumed, no id", encode_connected(connected(std::nullopt, "s", "node-b", 10, true)),
         R"({"op":"connected","session":"s","node":"node-b","heartbeat":10,"resumed":true})"},
        {"connected escapes node name", encode_connected(connected(1, "s", "a\"b\\c", 25, false)),
         R"({"op":"connected","id":1,"session":"s","node":"a\"b\\c","heartbeat":25,"resumed":false})"},
        {"subscribed fresh", encode_subscribed(subscribed(2, "chat:a", 41, "e1", false, 0, std::nullopt)),
         R"({"op":"subscribed","id":2,"channel":"chat:a","serial":41,"epoch":"e1","resumed":false,"replayed":0})"},
        {"subscribed resumed", encode_subscribed(subscribed(2, "c", 45, "e1", true, 4, std::nullopt)),
         R"({"op":"subscribed","id":2,"channel":"c","serial":45,"epoch":"e1","resumed":true,"replayed":4})"},
        {"subscribed not resumed with reason",
         encode_subscribed(subscribed(2, "c", 45, "e2", false, 0, "epoch_changed")),
         R"({"op":"subscribed","id":2,"channel":"c","serial":45,"epoch":"e2","resumed":false,"replayed":0,)"
         R"("reason":"epoch_changed"})"},
        {"subscribed restored from session (no id)",
         encode_subscribed(subscribed(std::nullopt, "c", 7, "e", true, 2, std::nullopt)),
         R"({"op":"subscribed","channel":"c","serial":7,"epoch":"e","resumed":true,"replayed":2})"},
        {"unsubscribed", encode_unsubscribed(3, "c"), R"({"op":"unsubscribed","id":3,"channel":"c"})"},
        {"unsubscribed with reason", encode_unsubscribed(std::nullopt, "c", "shutdown"),
         R"({"op":"unsubscribed","channel":"c","reason":"shutdown"})"},
        {"published", encode_published(4, "c", 46), R"({"op":"published","id":4,"channel":"c","serial":46})"},
        {"published max serial", encode_published(std::nullopt, "c", kMax),
         R"({"op":"published","channel":"c","serial":18446744073709551615})"},
        {"history", encode_history(history(5, "c", "e", 43, {{42, R"({"x":1})"}, {43, "null"}})),
         R"({"op":"history","id":5,"channel":"c","epoch":"e","serial":43,"messages":[{"serial":42,"data":{"x":1}},)"
         R"({"serial":43,"data":null}]})"},
        {"history empty", encode_history(history(5, "c", "e", 0, {})),
         R"({"op":"history","id":5,"channel":"c","epoch":"e","serial":0,"messages":[]})"},
        {"discontinuity", encode_discontinuity(discontinuity("c", "e", 50, "history_expired")),
         R"({"op":"discontinuity","channel":"c","epoch":"e","serial":50,"reason":"history_expired"})"},
        {"pong", encode_pong(6), R"({"op":"pong","id":6})"},
        {"pong without id", encode_pong(std::nullopt), R"({"op":"pong"})"},
        {"pong negative id", encode_pong(-9223372036854775807LL - 1),
         R"({"op":"pong","id":-9223372036854775808})"},
        {"refreshed", encode_refreshed(8, 1764003600), R"({"op":"refreshed","id":8,"expires":1764003600})"},
        {"refreshed without id, no expiry", encode_refreshed(std::nullopt, 0), R"({"op":"refreshed","expires":0})"},
        {"unsubscribed forbidden", encode_unsubscribed(std::nullopt, "chat:a", "forbidden"),
         R"({"op":"unsubscribed","channel":"chat:a","reason":"forbidden"})"},
        {"error unauthorized", encode_error(1, ProtocolError::Unauthorized, "token has expired"),
         R"({"op":"error","id":1,"code":"unauthorized","message":"token has expired"})"},
        {"error token_expired, no id", encode_error(std::nullopt, ProtocolError::TokenExpired),
         R"({"op":"error","code":"token_expired","message":"token expired: send refresh with a new token"})"},
        {"error with message", encode_error(2, ProtocolError::InvalidChannel, "\"channel\" is bad"),
         R"({"op":"error","id":2,"code":"invalid_channel","message":"\"channel\" is bad"})"},
        {"error default message, no id", encode_error(std::nullopt, ProtocolError::NotConnected),
         R"({"op":"error","code":"not_connected","message":"send connect first"})"},
        {"message", encode_message("chat:a", 42, R"({"text":"hi"})"),
         R"({"op":"message","channel":"chat:a","serial":42,"data":{"text":"hi"}})"},
        {"message scalar data", encode_message("c", 1, "3.5"),
         R"({"op":"message","channel":"c","serial":1,"data":3.5})"},
        {"message max serial", encode_message("c", kMax, "null"),
         R"({"op":"message","channel":"c","serial":18446744073709551615,"data":null})"},
    };
}

TEST(ServerMessages, ExactEncodings) {
    for (const EncodeCase& c : encode_cases()) {
        EXPECT_EQ(c.got, c.expected) << c.name;
        const auto parsed = nlohmann::json::parse(c.got, nullptr, false);
        EXPECT_FALSE(parsed.is_discarded()) << c.name << " is not valid JSON: " << c.got;
    }
}

TEST(ServerMessages, ErrorUsesEveryTableCode) {
    for (const ProtocolErrorInfo& info : all_protocol_errors()) {
        const auto parsed = nlohmann::json::parse(encode_error(1, info.error), nullptr, false);
        ASSERT_TRUE(parsed.is_object()) << info.code;
        EXPECT_EQ(parsed.value("code", ""), info.code);
        EXPECT_EQ(parsed.value("message", ""), info.message) << info.code;
    }
}

struct EscapeCase {
    std::string name;
    std::string text;
    std::string expected_json;  // the JSON string literal, quotes included
};

TEST(ServerMessages, EscapesFreeText) {
    const EscapeCase cases[] = {
        {"plain", "abc", R"("abc")"},
        {"quote and backslash", "a\"b\\c", R"("a\"b\\c")"},
        {"short escapes", "\b\f\n\r\t", R"("\b\f\n\r\t")"},
        {"other control bytes", std::string("\x00\x01\x1f", 3), R"("\u0000\u0001\u001f")"},
        {"DEL passes", "\x7f", "\"\x7f\""},
        {"slash passes", "a/b", R"("a/b")"},
        {"2-byte UTF-8 passes", "caf\xc3\xa9", "\"caf\xc3\xa9\""},
        {"3-byte UTF-8 passes", "\xe2\x82\xac", "\"\xe2\x82\xac\""},
        {"4-byte UTF-8 passes", "\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""},
        {"stray continuation", "a\x80z", R"("a\ufffdz")"},
        {"truncated sequence at end", "a\xc3", R"("a\ufffd")"},
        {"truncated 3-byte then ASCII", "\xe2\x82z", R"("\ufffd\ufffdz")"},
        {"overlong 2-byte", "\xc0\xaf", R"("\ufffd\ufffd")"},
        {"overlong 3-byte", "\xe0\x80\xaf", R"("\ufffd\ufffd\ufffd")"},
        {"surrogate", "\xed\xa0\x80", R"("\ufffd\ufffd\ufffd")"},
        {"above U+10FFFF", "\xf4\x90\x80\x80", R"("\ufffd\ufffd\ufffd\ufffd")"},
        {"invalid lead 0xff", "\xff", R"("\ufffd")"},
    };
    for (const EscapeCase& c : cases) {
        const std::string got = encode_error(std::nullopt, ProtocolError::Internal, c.text);
        const std::string expected = R"({"op":"error","code":"internal","message":)" + c.expected_json + "}";
        EXPECT_EQ(got, expected) << c.name;
        EXPECT_FALSE(nlohmann::json::parse(got, nullptr, false).is_discarded()) << c.name << ": " << got;
    }
}

TEST(ServerMessages, EpochSessionAndReasonAreEscaped) {
    const std::string evil = "x\"}\n";
    const std::vector<std::string> outputs = {
        encode_connected(connected(1, evil, evil, 25, false)),
        encode_subscribed(subscribed(1, "c", 1, evil, false, 0, evil)),
        encode_unsubscribed(1, "c", evil),
        encode_history(history(1, "c", evil, 1, {})),
        encode_discontinuity(discontinuity("c", evil, 1, evil)),
    };
    for (const std::string& out : outputs) {
        const auto parsed = nlohmann::json::parse(out, nullptr, false);
        ASSERT_TRUE(parsed.is_object()) << out;
        EXPECT_EQ(parsed.size(), nlohmann::json::parse(out).size()) << out;
        EXPECT_NE(out.find(R"(x\"}\n)"), std::string::npos) << out;
    }
}

TEST(ServerMessages, ColdPathsEscapeAnUnvalidatedChannel) {
    const std::string got = encode_published(1, "a\"b", 1);
    EXPECT_EQ(got, R"({"op":"published","id":1,"channel":"a\"b","serial":1})");
}

TEST(ServerMessages, MessageEmbedsLargeDataVerbatim) {
    const std::string data = "\"" + std::string(70000, 'x') + "\"";
    const std::string got = encode_message("c", 9, data);
    const std::string prefix = R"({"op":"message","channel":"c","serial":9,"data":)";
    ASSERT_EQ(got.size(), prefix.size() + data.size() + 1);
    EXPECT_EQ(got.compare(0, prefix.size(), prefix), 0) << got.substr(0, 80);
    EXPECT_EQ(got.compare(prefix.size(), data.size(), data), 0);
    EXPECT_EQ(got.back(), '}');
}

}  // namespace
}  // namespace herald
