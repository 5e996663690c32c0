// Tests for protocol/commands.cpp: one table of texts that decode to commands and one of texts that must fail,
// with the error code, the echoed id and a fragment of the message that names the field at fault.
#include "protocol/commands.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace herald {
namespace {

using Json = nlohmann::json;

// A readable, complete rendering of a command: two commands are equal when their renderings are.
Json id_json(RequestId id) { return id ? Json(*id) : Json("none"); }
template <typename T>
Json optional_json(const std::optional<T>& value) {
    return value ? Json(*value) : Json("none");
}
Json position_json(const StreamPosition& p) { return Json{{"serial", p.serial}, {"epoch", p.epoch}}; }

std::string describe(const Command& command) {
    Json out;
    std::visit(
        [&](const auto& c) {
            using T = std::decay_t<decltype(c)>;
            out["id"] = id_json(c.id);
            if constexpr (std::is_same_v<T, ConnectCommand>) {
                out["op"] = "connect";
                out["token"] = optional_json(c.token);
                out["session"] = optional_json(c.session);
                Json positions = Json::object();
                for (const auto& [channel, p] : c.positions) positions[channel] = position_json(p);
                out["positions"] = positions;
            } else if constexpr (std::is_same_v<T, SubscribeCommand>) {
                out["op"] = "subscribe";
                out["channel"] = c.channel;
                out["since"] = c.since ? position_json(*c.since) : Json("none");
            } else if constexpr (std::is_same_v<T, UnsubscribeCommand>) {
                out["op"] = "unsubscribe";
                out["channel"] = c.channel;
            } else if constexpr (std::is_same_v<T, PublishCommand>) {
                out["op"] = "publish";
                out["channel"] = c.channel;
                out["data"] = c.data;
                out["key"] = optional_json(c.key);
            } else if constexpr (std::is_same_v<T, HistoryCommand>) {
                out["op"] = "history";
                out["channel"] = c.channel;
                out["since"] = optional_json(c.since);
                out["limit"] = optional_json(c.limit);
            } else if constexpr (std::is_same_v<T, RefreshCommand>) {
                out["op"] = "refresh";
                out["token"] = c.token;
            } else {
                out["op"] = "ping";
            }
        },
        command);
    return out.dump();
}

std::string describe(const CommandError& error) {
    return std::string(error_info(error.error).code) + " id=" + id_json(error.id).dump() + " message=" +
           Json(error.message).dump();
}

// Builders: plain assignments keep the tables readable without designated-initializer noise.
Command connect(RequestId id, std::optional<std::string> token = {}, std::optional<std::string> session = {},
                std::map<std::string, StreamPosition> positions = {}) {
    ConnectCommand c;
    c.id = id;
    c.token = std::move(token);
    c.session = std::move(session);
    c.positions = std::move(positions);
    return c;
}
Command subscribe(RequestId id, std::string channel, std::optional<StreamPosition> since = {}) {
    SubscribeCommand c;
    c.id = id;
    c.channel = std::move(channel);
    c.since = std::move(since);
    return c;
}
Command unsubscribe(RequestId id, std::string channel) {
    UnsubscribeCommand c;
    c.id = id;
    c.channel = std::move(channel);
    return c;
}
Command publish(RequestId id, std::string channel, std::string data, std::optional<std::string> key = {}) {
    PublishCommand c;
    c.id = id;
    c.channel = std::move(channel);
    c.data = std::move(data);
    c.key = std::move(key);
    return c;
}
Command history(RequestId id, std::string channel, std::optional<uint64_t> since = {},
                std::optional<uint64_t> limit = {}) {
    HistoryCommand c;
    c.id = id;
    c.channel = std::move(channel);
    c.since = since;
    c.limit = limit;
    return c;
}
Command ping(RequestId id) {
    PingCommand c;
    c.id = id;
    return c;
}
Command refresh(RequestId id, std::string token) {
    RefreshCommand c;
    c.id = id;
    c.token = std::move(token);
    return c;
}

std::string nested_arrays(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

struct DecodeCase {
    std::string name;
    std::string input;
    Command expected;
};

std::vector<DecodeCase> decode_cases() {
    const std::string ch255(255, 'c');
    const std::string s128(128, 's');
    return {
        // connect
        {"connect minimal", R"({"op":"connect"})", connect(std::nullopt)},
        {"connect with id", R"({"op":"connect","id":1})", connect(1)},
        {"connect full",
         R"({"op":"connect","id":1,"token":"a.b.c","session":"0123456789abcdef0123456789abcdef",)"
         R"("positions":{"chat:a":{"serial":41,"epoch":"e1"},"b":{"serial":0,"epoch":""}}})",
         connect(1, "a.b.c", "0123456789abcdef0123456789abcdef",
                 {{"chat:a", StreamPosition{41, "e1"}}, {"b", StreamPosition{0, ""}}})},
        {"connect empty token", R"({"op":"connect","token":""})", connect(std::nullopt, "")},
        {"connect empty positions", R"({"op":"connect","positions":{}})", connect(std::nullopt)},
        {"connect session 128 bytes", R"({"op":"connect","session":")" + s128 + "\"}",
         connect(std::nullopt, std::nullopt, s128)},
        {"connect session 1 byte", R"({"op":"connect","session":"x"})", connect(std::nullopt, std::nullopt, "x")},
        {"connect position serial max",
         R"({"op":"connect","positions":{"c":{"serial":18446744073709551615,"epoch":"e"}}})",
         connect(std::nullopt, std::nullopt, std::nullopt,
                 {{"c", StreamPosition{std::numeric_limits<uint64_t>::max(), "e"}}})},
        {"connect ignores unknown fields", R"({"op":"connect","id":2,"client":"js/1.0","extra":{"x":[1]}})",
         connect(2)},
        {"position ignores unknown fields", R"({"op":"connect","positions":{"c":{"serial":1,"epoch":"e","x":0}}})",
         connect(std::nullopt, std::nullopt, std::nullopt, {{"c", StreamPosition{1, "e"}}})},
        // subscribe / unsubscribe
        {"subscribe", R"({"op":"subscribe","id":2,"channel":"chat:room1"})", subscribe(2, "chat:room1")},
        {"subscribe since", R"({"op":"subscribe","id":2,"channel":"c","since":{"serial":41,"epoch":"e"}})",
         subscribe(2, "c", StreamPosition{41, "e"})},
        {"subscribe since zero, empty epoch", R"({"op":"subscribe","channel":"c","since":{"serial":0,"epoch":""}})",
         subscribe(std::nullopt, "c", StreamPosition{0, ""})},
        {"subscribe since serial as 41.0", R"({"op":"subscribe","channel":"c","since":{"serial":41.0,"epoch":"e"}})",
         subscribe(std::nullopt, "c", StreamPosition{41, "e"})},
        {"subscribe 255-char channel", R"({"op":"subscribe","channel":")" + ch255 + "\"}",
         subscribe(std::nullopt, ch255)},
        {"subscribe every allowed char", R"({"op":"subscribe","channel":"AZaz09_.:@/=-"})",
         subscribe(std::nullopt, "AZaz09_.:@/=-")},
        {"subscribe escaped channel", R"({"op":"subscribe","channel":"\u0061\/b"})", subscribe(std::nullopt, "a/b")},
        {"unsubscribe", R"({"op":"unsubscribe","id":3,"channel":"c"})", unsubscribe(3, "c")},
        // publish
        {"publish object, re-serialised compactly", R"({"op":"publish","id":4,"channel":"c","data": { "a" : [1, 2] }})",
         publish(4, "c", R"({"a":[1,2]})")},
        {"publish null data", R"({"op":"publish","channel":"c","data":null})", publish(std::nullopt, "c", "null")},
        {"publish string data", R"({"op":"publish","channel":"c","data":"hi \"there\""})",
         publish(std::nullopt, "c", R"("hi \"there\"")")},
        {"publish number data", R"({"op":"publish","channel":"c","data":-12.5})", publish(std::nullopt, "c", "-12.5")},
        {"publish bool data", R"({"op":"publish","channel":"c","data":false})", publish(std::nullopt, "c", "false")},
        {"publish keeps UTF-8", "{\"op\":\"publish\",\"channel\":\"c\",\"data\":\"caf\xc3\xa9 \\u00e9\"}",
         publish(std::nullopt, "c", "\"caf\xc3\xa9 \xc3\xa9\"")},
        {"publish with key", R"({"op":"publish","id":4,"channel":"c","data":1,"key":"k-1"})",
         publish(4, "c", "1", "k-1")},
        {"publish key 128 bytes", R"({"op":"publish","channel":"c","data":1,"key":")" + s128 + "\"}",
         publish(std::nullopt, "c", "1", s128)},
        {"publish data nested 63 deep (64 with the command)",
         R"({"op":"publish","channel":"c","data":)" + nested_arrays(63) + "}",
         publish(std::nullopt, "c", nested_arrays(63))},
        {"brackets inside strings do not count as nesting",
         R"({"op":"publish","channel":"c","data":")" + std::string(100, '[') + R"(\"{{"})",
         publish(std::nullopt, "c", "\"" + std::string(100, '[') + "\\\"{{\"")},
        // history
        {"history plain", R"({"op":"history","id":5,"channel":"c"})", history(5, "c")},
        {"history since and limit", R"({"op":"history","id":5,"channel":"c","since":41,"limit":10})",
         history(5, "c", 41, 10)},
        {"history limit zero", R"({"op":"history","channel":"c","limit":0})",
         history(std::nullopt, "c", std::nullopt, 0)},
        // refresh
        {"refresh", R"({"op":"refresh","id":7,"token":"h.p.s"})", refresh(7, "h.p.s")},
        {"refresh without id", R"({"op":"refresh","token":"t"})", refresh(std::nullopt, "t")},
        {"refresh ignores unknown fields", R"({"op":"refresh","id":7,"token":"t","session":"x"})", refresh(7, "t")},
        // ping and id forms
        {"ping", R"({"op":"ping","id":6})", ping(6)},
        {"ping without id", R"({"op":"ping"})", ping(std::nullopt)},
        {"id zero", R"({"op":"ping","id":0})", ping(0)},
        {"id negative", R"({"op":"ping","id":-5})", ping(-5)},
        {"id int64 max", R"({"op":"ping","id":9223372036854775807})", ping(std::numeric_limits<int64_t>::max())},
        {"id int64 min", R"({"op":"ping","id":-9223372036854775808})", ping(std::numeric_limits<int64_t>::min())},
        {"id written as 7.0", R"({"op":"ping","id":7.0})", ping(7)},
        {"id written as 1e2", R"({"op":"ping","id":1e2})", ping(100)},
        {"duplicate key: last wins", R"({"op":"ping","id":1,"id":2})", ping(2)},
        {"op after other fields", R"({"channel":"c","id":9,"op":"unsubscribe"})", unsubscribe(9, "c")},
        {"surrounding whitespace", " \n\t{\"op\" : \"ping\" , \"id\" : 1}\r\n ", ping(1)},
    };
}

TEST(DecodeCommand, ValidCommands) {
    for (const DecodeCase& c : decode_cases()) {
        const auto result = decode_command(c.input);
        if (!result.ok()) {
            ADD_FAILURE() << c.name << "\n  input:    " << c.input << "\n  expected: " << describe(c.expected)
                          << "\n  got error " << describe(result.error());
            continue;
        }
        EXPECT_EQ(describe(*result), describe(c.expected)) << c.name << "\n  input: " << c.input;
        EXPECT_EQ(command_id(*result), command_id(c.expected)) << c.name;
    }
}

struct ErrorCase {
    std::string name;
    std::string input;
    ProtocolError error;
    RequestId id;
    std::string message_contains;  // the field named in the message, when there is one
};

std::vector<ErrorCase> error_cases() {
    using enum ProtocolError;
    const auto bad = BadRequest;
    const std::string s129(129, 's');
    return {
        // Not a command at all: no id can be trusted.
        {"empty text", "", bad, std::nullopt, "JSON"},
        {"whitespace only", "  ", bad, std::nullopt, "JSON"},
        {"not JSON", "hello", bad, std::nullopt, "JSON"},
        {"truncated object", R"({"op":"ping")", bad, std::nullopt, "JSON"},
        {"trailing garbage", R"({"op":"ping"} x)", bad, std::nullopt, "JSON"},
        {"two objects", R"({"op":"ping"}{"op":"ping"})", bad, std::nullopt, "JSON"},
        {"single quotes", R"({'op':'ping'})", bad, std::nullopt, "JSON"},
        {"comment", R"({"op":"ping"/* c */})", bad, std::nullopt, "JSON"},
        {"NaN literal", R"({"op":"ping","id":NaN})", bad, std::nullopt, "JSON"},
        {"number overflow", R"({"op":"publish","channel":"c","data":1e400})", bad, std::nullopt, "JSON"},
        {"lone surrogate escape", R"({"op":"publish","channel":"c","data":"\ud800"})", bad, std::nullopt, "JSON"},
        {"array", R"([{"op":"ping"}])", bad, std::nullopt, "object"},
        {"string", R"("ping")", bad, std::nullopt, "object"},
        {"number", "1", bad, std::nullopt, "object"},
        {"null", "null", bad, std::nullopt, "object"},
        // id
        {"id string", R"({"op":"ping","id":"1"})", bad, std::nullopt, "\"id\""},
        {"id fraction", R"({"op":"ping","id":1.5})", bad, std::nullopt, "\"id\""},
        {"id bool", R"({"op":"ping","id":true})", bad, std::nullopt, "\"id\""},
        {"id null", R"({"op":"ping","id":null})", bad, std::nullopt, "\"id\""},
        {"id object", R"({"op":"ping","id":{}})", bad, std::nullopt, "\"id\""},
        {"id above int64", R"({"op":"ping","id":9223372036854775808})", bad, std::nullopt, "\"id\""},
        {"id 1e19", R"({"op":"ping","id":1e19})", bad, std::nullopt, "\"id\""},
        {"bad id wins over unknown op", R"({"op":"nope","id":"x"})", bad, std::nullopt, "\"id\""},
        // op
        {"missing op", R"({"id":7})", bad, 7, "\"op\""},
        {"empty object", "{}", bad, std::nullopt, "\"op\""},
        {"op number", R"({"op":1,"id":7})", bad, 7, "\"op\""},
        {"op null", R"({"op":null,"id":7})", bad, 7, "\"op\""},
        {"unknown op", R"({"op":"nope","id":7})", UnknownOp, 7, "nope"},
        {"op is case-sensitive", R"({"op":"Ping"})", UnknownOp, std::nullopt, "Ping"},
        {"empty op", R"({"op":""})", UnknownOp, std::nullopt, "op"},
        // channel (shared by subscribe, unsubscribe, publish, history)
        {"subscribe without channel", R"({"op":"subscribe","id":2})", bad, 2, "\"channel\""},
        {"subscribe channel number", R"({"op":"subscribe","id":2,"channel":5})", bad, 2, "\"channel\""},
        {"subscribe channel null", R"({"op":"subscribe","id":2,"channel":null})", bad, 2, "\"channel\""},
        {"subscribe channel array", R"({"op":"subscribe","id":2,"channel":["c"]})", bad, 2, "\"channel\""},
        {"subscribe empty channel", R"({"op":"subscribe","id":2,"channel":""})", InvalidChannel, 2, "\"channel\""},
        {"subscribe 256-char channel", R"({"op":"subscribe","id":2,"channel":")" + std::string(256, 'c') + "\"}",
         InvalidChannel, 2, "\"channel\""},
        {"subscribe channel with space", R"({"op":"subscribe","id":2,"channel":"a b"})", InvalidChannel, 2,
         "\"channel\""},
        {"subscribe channel with #", R"({"op":"subscribe","id":2,"channel":"a#b"})", InvalidChannel, 2, "\"channel\""},
        {"subscribe non-ASCII channel", "{\"op\":\"subscribe\",\"id\":2,\"channel\":\"caf\xc3\xa9\"}", InvalidChannel,
         2, "\"channel\""},
        {"subscribe channel with escaped NUL", R"({"op":"subscribe","id":2,"channel":"a\u0000"})", InvalidChannel, 2,
         "\"channel\""},
        {"unsubscribe without channel", R"({"op":"unsubscribe","id":3})", bad, 3, "\"channel\""},
        {"unsubscribe invalid channel", R"({"op":"unsubscribe","id":3,"channel":"a b"})", InvalidChannel, 3,
         "\"channel\""},
        {"publish without channel", R"({"op":"publish","id":4,"data":1})", bad, 4, "\"channel\""},
        {"publish invalid channel", R"({"op":"publish","id":4,"channel":"","data":1})", InvalidChannel, 4,
         "\"channel\""},
        {"history without channel", R"({"op":"history","id":5})", bad, 5, "\"channel\""},
        {"history invalid channel", R"({"op":"history","id":5,"channel":"?"})", InvalidChannel, 5, "\"channel\""},
        // subscribe since
        {"since not an object", R"({"op":"subscribe","id":2,"channel":"c","since":41})", bad, 2, "\"since\""},
        {"since null", R"({"op":"subscribe","id":2,"channel":"c","since":null})", bad, 2, "\"since\""},
        {"since without serial", R"({"op":"subscribe","id":2,"channel":"c","since":{"epoch":"e"}})", bad, 2,
         "\"since.serial\""},
        {"since serial negative", R"({"op":"subscribe","id":2,"channel":"c","since":{"serial":-1,"epoch":"e"}})", bad,
         2, "\"since.serial\""},
        {"since serial string", R"({"op":"subscribe","id":2,"channel":"c","since":{"serial":"1","epoch":"e"}})", bad,
         2, "\"since.serial\""},
        {"since serial fraction", R"({"op":"subscribe","id":2,"channel":"c","since":{"serial":1.5,"epoch":"e"}})",
         bad, 2, "\"since.serial\""},
        {"since serial above uint64",
         R"({"op":"subscribe","id":2,"channel":"c","since":{"serial":18446744073709551616,"epoch":"e"}})", bad, 2,
         "\"since.serial\""},
        {"since without epoch", R"({"op":"subscribe","id":2,"channel":"c","since":{"serial":1}})", bad, 2,
         "\"since.epoch\""},
        {"since epoch number", R"({"op":"subscribe","id":2,"channel":"c","since":{"serial":1,"epoch":7}})", bad, 2,
         "\"since.epoch\""},
        // connect
        {"token number", R"({"op":"connect","id":1,"token":5})", bad, 1, "\"token\""},
        {"token null", R"({"op":"connect","id":1,"token":null})", bad, 1, "\"token\""},
        {"session number", R"({"op":"connect","id":1,"session":5})", bad, 1, "\"session\""},
        {"session empty", R"({"op":"connect","id":1,"session":""})", bad, 1, "\"session\""},
        {"session 129 bytes", R"({"op":"connect","id":1,"session":")" + s129 + "\"}", bad, 1, "\"session\""},
        {"positions array", R"({"op":"connect","id":1,"positions":[]})", bad, 1, "\"positions\""},
        {"positions invalid channel", R"({"op":"connect","id":1,"positions":{"a b":{"serial":1,"epoch":"e"}}})",
         InvalidChannel, 1, "\"positions\""},
        {"positions empty channel", R"({"op":"connect","id":1,"positions":{"":{"serial":1,"epoch":"e"}}})",
         InvalidChannel, 1, "\"positions\""},
        {"positions entry not an object", R"({"op":"connect","id":1,"positions":{"c":41}})", bad, 1,
         "\"positions.c\""},
        {"positions serial negative", R"({"op":"connect","id":1,"positions":{"c":{"serial":-1,"epoch":"e"}}})", bad,
         1, "\"positions.c.serial\""},
        {"positions epoch missing", R"({"op":"connect","id":1,"positions":{"c":{"serial":1}}})", bad, 1,
         "\"positions.c.epoch\""},
        // refresh
        {"refresh without token", R"({"op":"refresh","id":7})", bad, 7, "\"token\""},
        {"refresh empty token", R"({"op":"refresh","id":7,"token":""})", bad, 7, "\"token\""},
        {"refresh token number", R"({"op":"refresh","id":7,"token":1})", bad, 7, "\"token\""},
        {"refresh token null", R"({"op":"refresh","id":7,"token":null})", bad, 7, "\"token\""},
        // publish
        {"publish without data", R"({"op":"publish","id":4,"channel":"c"})", bad, 4, "\"data\""},
        {"publish key number", R"({"op":"publish","id":4,"channel":"c","data":1,"key":1})", bad, 4, "\"key\""},
        {"publish key empty", R"({"op":"publish","id":4,"channel":"c","data":1,"key":""})", bad, 4, "\"key\""},
        {"publish key 129 bytes", R"({"op":"publish","id":4,"channel":"c","data":1,"key":")" + s129 + "\"}", bad, 4,
         "\"key\""},
        // history
        {"history since negative", R"({"op":"history","id":5,"channel":"c","since":-1})", bad, 5, "\"since\""},
        {"history since string", R"({"op":"history","id":5,"channel":"c","since":"5"})", bad, 5, "\"since\""},
        {"history since object", R"({"op":"history","id":5,"channel":"c","since":{"serial":1,"epoch":"e"}})", bad, 5,
         "\"since\""},
        {"history limit negative", R"({"op":"history","id":5,"channel":"c","limit":-1})", bad, 5, "\"limit\""},
        {"history limit fraction", R"({"op":"history","id":5,"channel":"c","limit":0.5})", bad, 5, "\"limit\""},
        {"history limit null", R"({"op":"history","id":5,"channel":"c","limit":null})", bad, 5, "\"limit\""},
        // nesting
        {"data nested 64 deep (65 with the command)",
         R"({"op":"publish","channel":"c","data":)" + nested_arrays(64) + "}",
         bad, std::nullopt, "nested"},
        {"deep nesting anywhere", nested_arrays(65), bad, std::nullopt, "nested"},
        {"hostile nesting", std::string(100000, '['), bad, std::nullopt, "nested"},
    };
}

TEST(DecodeCommand, Errors) {
    for (const ErrorCase& c : error_cases()) {
        const auto result = decode_command(c.input);
        const std::string shown_input = c.input.size() > 200 ? c.input.substr(0, 200) + "..." : c.input;
        const std::string expected = std::string(error_info(c.error).code) + " id=" + id_json(c.id).dump();
        if (result.ok()) {
            ADD_FAILURE() << c.name << "\n  input:    " << shown_input << "\n  expected: " << expected
                          << "\n  got command " << describe(*result);
            continue;
        }
        const CommandError& got = result.error();
        EXPECT_EQ(error_info(got.error).code, error_info(c.error).code)
            << c.name << "\n  input: " << shown_input << "\n  got: " << describe(got);
        EXPECT_EQ(got.id, c.id) << c.name << ": expected " << expected << ", got " << describe(got);
        EXPECT_NE(got.message.find(c.message_contains), std::string::npos)
            << c.name << ": message should mention " << c.message_contains << ", got " << describe(got);
    }
}

TEST(DecodeCommand, DeepObjectNestingIsRejected) {
    std::string text = R"({"op":"ping","id":3,"x":)";
    for (int i = 0; i < 64; ++i) text += R"({"a":)";
    text += "1";
    for (int i = 0; i < 64; ++i) text += "}";
    text += "}";
    const auto result = decode_command(text);
    ASSERT_FALSE(result.ok()) << "expected bad_request, got " << describe(*result);
    EXPECT_EQ(result.error().error, ProtocolError::BadRequest) << describe(result.error());
}

TEST(DecodeCommand, UnknownOpEchoIsBounded) {
    const std::string op(10000, 'x');
    const auto result = decode_command(R"({"op":")" + op + "\"}");
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().error, ProtocolError::UnknownOp) << describe(result.error());
    EXPECT_LT(result.error().message.size(), 100u) << describe(result.error());
}

TEST(DecodeCommand, UnknownOpEchoDoesNotSplitUtf8) {
    // 63 ASCII bytes then a 2-byte character: a 64-byte cut would fall inside it.
    const std::string op = std::string(63, 'x') + "\xc3\xa9" + "tail";
    const auto result = decode_command(R"({"op":")" + op + "\"}");
    ASSERT_FALSE(result.ok());
    const std::string& message = result.error().message;
    EXPECT_EQ(message.find('\xc3'), std::string::npos) << describe(result.error());
    EXPECT_NE(message.find(std::string(63, 'x')), std::string::npos) << describe(result.error());
}

TEST(DecodeCommand, ArbitraryBytesNeverThrow) {
    // A cheap sweep over malformed prefixes of a valid command: every prefix must fail cleanly, not throw.
    const std::string text =
        R"({"op":"connect","id":1,"token":"t","session":"s","positions":{"c":{"serial":1,"epoch":"e"}}})";
    for (size_t n = 0; n < text.size(); ++n) {
        const auto result = decode_command(std::string_view(text).substr(0, n));
        EXPECT_FALSE(result.ok()) << "prefix of " << n << " bytes decoded: " << describe(*result);
    }
    EXPECT_TRUE(decode_command(text).ok());
}

TEST(DecodeCommand, NullViewIsBadRequest) {
    const auto result = decode_command(std::string_view{});
    ASSERT_FALSE(result.ok()) << "expected bad_request, got " << describe(*result);
    EXPECT_EQ(result.error().error, ProtocolError::BadRequest) << describe(result.error());
}

TEST(CommandId, ReturnsTheIdOfEveryKind) {
    EXPECT_EQ(command_id(connect(1)), RequestId(1));
    EXPECT_EQ(command_id(subscribe(2, "c")), RequestId(2));
    EXPECT_EQ(command_id(unsubscribe(3, "c")), RequestId(3));
    EXPECT_EQ(command_id(publish(4, "c", "1")), RequestId(4));
    EXPECT_EQ(command_id(history(5, "c")), RequestId(5));
    EXPECT_EQ(command_id(ping(6)), RequestId(6));
    EXPECT_EQ(command_id(refresh(7, "t")), RequestId(7));
    EXPECT_EQ(command_id(ping(std::nullopt)), std::nullopt);
}

}  // namespace
}  // namespace herald
