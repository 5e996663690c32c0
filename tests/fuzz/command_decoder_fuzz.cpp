// Fuzz target for protocol/commands.cpp: one client text message in (the whole input, so seeds are readable JSON),
// one Command or CommandError out; then every field of the result goes through the server-message encoders the
// broker would use for the reply, and each reply must parse back as JSON carrying the same values.
//
// Invariants beyond the sanitizers (and "no exception escapes"): decoding is deterministic; errors are command-level
// (bad_request, unknown_op, invalid_channel); channels are valid names; key/session are 1-128 bytes; a publish's data
// is compact JSON that re-encodes to itself; ids survive the round trip; for UTF-8 input every decoded string is
// UTF-8.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz_support.h"
#include "protocol/channel_name.h"
#include "protocol/commands.h"
#include "protocol/errors.h"
#include "protocol/server_messages.h"

namespace {

using Json = nlohmann::ordered_json;
using herald::RequestId;

Json parse_reply(const std::string& text) {
    FUZZ_CHECK(herald::fuzz::reference_utf8(text), "a reply is valid UTF-8");
    Json reply = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    FUZZ_CHECK(!reply.is_discarded() && reply.is_object(), "a reply is a JSON object");
    return reply;
}

// [A-Za-z0-9_.:@/=-]{1,255}, restated rather than read from channel_name.cpp.
bool reference_channel(std::string_view name) {
    if (name.empty() || name.size() > 255) return false;
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        std::string_view("_.:@/=-").find(c) != std::string_view::npos;
        if (!ok) return false;
    }
    return true;
}

void check_id(const Json& reply, RequestId id) {
    if (id) {
        FUZZ_CHECK(reply.contains("id") && reply["id"].is_number_integer(), "a reply carries the command's id");
        FUZZ_CHECK(reply["id"].get<int64_t>() == *id, "the id survives the round trip");
    } else {
        FUZZ_CHECK(!reply.contains("id"), "no id in a reply to a command without one");
    }
}

void check_channel(const std::string& channel) {
    FUZZ_CHECK(reference_channel(channel), "a decoded channel is a valid name");
    FUZZ_CHECK(herald::is_valid_channel_name(channel), "is_valid_channel_name agrees");
    (void)herald::channel_namespace(channel);
}

void check_text(const std::string& text, bool input_utf8) {
    if (input_utf8) FUZZ_CHECK(herald::fuzz::reference_utf8(text), "decoded strings of UTF-8 input are UTF-8");
}

struct Checker {
    bool input_utf8;

    void operator()(const herald::ConnectCommand& c) const {
        if (c.token) check_text(*c.token, input_utf8);
        if (c.session) {
            FUZZ_CHECK(!c.session->empty() && c.session->size() <= 128, "a session is 1-128 bytes");
            check_text(*c.session, input_utf8);
        }
        herald::ConnectedReply connected{c.id, c.session.value_or("s"), "node", 25, c.session.has_value()};
        const Json reply = parse_reply(herald::encode_connected(connected));
        check_id(reply, c.id);
        if (c.session && input_utf8) FUZZ_CHECK(reply["session"] == *c.session, "the session survives");
        for (const auto& [channel, position] : c.positions) {
            check_channel(channel);
            check_text(position.epoch, input_utf8);
            herald::SubscribedReply restored{std::nullopt, channel, position.serial, position.epoch, true, 0, {}};
            const Json sub = parse_reply(herald::encode_subscribed(restored));
            check_id(sub, std::nullopt);
            FUZZ_CHECK(sub["channel"] == channel, "the channel survives");
            FUZZ_CHECK(sub["serial"].get<uint64_t>() == position.serial, "the serial survives");
            if (input_utf8) FUZZ_CHECK(sub["epoch"] == position.epoch, "the epoch survives");
        }
    }
    void operator()(const herald::SubscribeCommand& c) const {
        check_channel(c.channel);
        herald::SubscribedReply subscribed{c.id, c.channel, 0, "e", false, 0, {}};
        if (c.since) {
            check_text(c.since->epoch, input_utf8);
            subscribed.serial = c.since->serial;
            subscribed.epoch = c.since->epoch;
            subscribed.reason = "epoch_changed";
        }
        const Json reply = parse_reply(herald::encode_subscribed(subscribed));
        check_id(reply, c.id);
        FUZZ_CHECK(reply["channel"] == c.channel, "the channel survives");
        if (c.since && input_utf8) FUZZ_CHECK(reply["epoch"] == c.since->epoch, "the epoch survives");
        const Json notice = parse_reply(
            herald::encode_discontinuity({c.channel, subscribed.epoch, subscribed.serial, "gap"}));
        FUZZ_CHECK(notice["channel"] == c.channel, "the channel survives a discontinuity");
    }
    void operator()(const herald::UnsubscribeCommand& c) const {
        check_channel(c.channel);
        const Json reply = parse_reply(herald::encode_unsubscribed(c.id, c.channel));
        check_id(reply, c.id);
        FUZZ_CHECK(reply["channel"] == c.channel, "the channel survives");
        check_id(parse_reply(herald::encode_unsubscribed(c.id, c.channel, "session_expired")), c.id);
    }
    void operator()(const herald::PublishCommand& c) const {
        check_channel(c.channel);
        if (c.key) {
            FUZZ_CHECK(!c.key->empty() && c.key->size() <= 128, "a key is 1-128 bytes");
            check_text(*c.key, input_utf8);
        }
        // data is compact JSON, ready to embed: it parses, and re-encoding it changes nothing.
        const Json data = Json::parse(c.data, nullptr, /*allow_exceptions=*/false);
        FUZZ_CHECK(!data.is_discarded(), "publish data is JSON");
        FUZZ_CHECK(data.dump(-1, ' ', false, Json::error_handler_t::strict) == c.data,
                   "publish data re-encodes to itself");
        check_id(parse_reply(herald::encode_published(c.id, c.channel, 1)), c.id);
        const Json message = parse_reply(herald::encode_message(c.channel, 7, c.data));
        FUZZ_CHECK(!message.contains("id"), "a message has no id");
        FUZZ_CHECK(message["data"] == data, "the data survives embedding in a message");
        herald::HistoryReply history{c.id, c.channel, "e", 7, {{7, c.data}, {8, c.data}}};
        const Json reply = parse_reply(herald::encode_history(history));
        FUZZ_CHECK(reply["messages"].size() == 2 && reply["messages"][1]["data"] == data,
                   "the data survives embedding in history");
    }
    void operator()(const herald::HistoryCommand& c) const {
        check_channel(c.channel);
        herald::HistoryReply history{c.id, c.channel, "e", c.since.value_or(0), {}};
        if (c.limit) history.messages.push_back({*c.limit, "null"});
        const Json reply = parse_reply(herald::encode_history(history));
        check_id(reply, c.id);
        FUZZ_CHECK(reply["serial"].get<uint64_t>() == c.since.value_or(0), "a serial survives");
    }
    void operator()(const herald::PingCommand& c) const { check_id(parse_reply(herald::encode_pong(c.id)), c.id); }
    void operator()(const herald::RefreshCommand& c) const {
        FUZZ_CHECK(!c.token.empty(), "a refresh token is not empty");
        check_text(c.token, input_utf8);
        check_id(parse_reply(herald::encode_refreshed(c.id, 1764003600)), c.id);
    }
    // A command added later still has its id checked until it gets its own overload here.
    template <typename Other>
    void operator()(const Other& c) const {
        check_id(parse_reply(herald::encode_pong(c.id)), c.id);
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const bool input_utf8 = herald::fuzz::reference_utf8(text);

    const auto result = herald::decode_command(text);
    const auto again = herald::decode_command(text);
    FUZZ_CHECK(result.ok() == again.ok(), "decoding is deterministic");

    if (!result.ok()) {
        const herald::CommandError& error = result.error();
        FUZZ_CHECK(error.error == herald::ProtocolError::BadRequest ||
                       error.error == herald::ProtocolError::UnknownOp ||
                       error.error == herald::ProtocolError::InvalidChannel,
                   "a command-level error");
        FUZZ_CHECK(!herald::error_info(error.error).close_code.has_value(), "a command error keeps the connection");
        FUZZ_CHECK(!error.message.empty(), "an error names its fault");
        FUZZ_CHECK(again.error().error == error.error && again.error().id == error.id &&
                       again.error().message == error.message,
                   "decoding is deterministic (error)");
        const Json reply = parse_reply(herald::encode_error(error.id, error.error, error.message));
        check_id(reply, error.id);
        FUZZ_CHECK(reply["code"] == herald::error_info(error.error).code, "the error code comes from the table");
        return 0;
    }

    const herald::Command& command = result.value();
    FUZZ_CHECK(command.index() == again.value().index(), "decoding is deterministic (op)");
    FUZZ_CHECK(herald::command_id(command) == herald::command_id(again.value()), "decoding is deterministic (id)");
    std::visit(Checker{input_utf8}, command);
    return 0;
}
