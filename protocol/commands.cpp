// Decodes one client text message into a typed Command. Every failure, including any exception nlohmann_json
// might raise, comes back as a CommandError value: this runs inside the connection's read callback.
#include "protocol/commands.h"

#include <cmath>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "protocol/channel_name.h"

namespace herald {
namespace {

// ordered_json keeps the publisher's key order when "data" is re-serialised.
using Json = nlohmann::ordered_json;

constexpr size_t kMaxNestingDepth = 64;
constexpr size_t kMaxSessionLength = 128;
constexpr size_t kMaxKeyLength = 128;
constexpr size_t kMaxEchoedOpLength = 64;

// Rejects deep nesting before nlohmann sees the text: its dump() recurses once per level, and data is dumped.
// Brackets inside strings do not count; malformed text may be miscounted, but the parser rejects it anyway.
bool nesting_within_limit(std::string_view text) {
    size_t depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        switch (c) {
            case '"':
                in_string = true;
                break;
            case '[':
            case '{':
                if (++depth > kMaxNestingDepth) return false;
                break;
            case ']':
            case '}':
                if (depth > 0) --depth;
                break;
            default:
                break;
        }
    }
    return true;
}

// JSON has one number type: 3, 3.0 and 3e0 are the same integer, so an integral value written as a float is
// accepted — but only up to 2^53, where doubles stop being exact: beyond it the text may name a different integer
// (an integer literal too large for 64 bits arrives here as a rounded double).
constexpr double kMaxExactDouble = 9007199254740992.0;  // 2^53

std::optional<int64_t> as_int64(const Json& value) {
    if (value.is_number_integer() && !value.is_number_unsigned()) return value.get<int64_t>();
    if (value.is_number_unsigned()) {
        const auto u = value.get<uint64_t>();
        if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
        return static_cast<int64_t>(u);
    }
    if (value.is_number_float()) {
        const double d = value.get<double>();
        if (!std::isfinite(d) || std::trunc(d) != d || d < -kMaxExactDouble || d > kMaxExactDouble) {
            return std::nullopt;
        }
        return static_cast<int64_t>(d);
    }
    return std::nullopt;
}

std::optional<uint64_t> as_uint64(const Json& value) {
    if (value.is_number_unsigned()) return value.get<uint64_t>();
    if (value.is_number_integer()) {
        const auto i = value.get<int64_t>();
        if (i < 0) return std::nullopt;
        return static_cast<uint64_t>(i);
    }
    if (value.is_number_float()) {
        const double d = value.get<double>();
        if (!std::isfinite(d) || std::trunc(d) != d || d < 0.0 || d > kMaxExactDouble) return std::nullopt;
        return static_cast<uint64_t>(d);
    }
    return std::nullopt;
}

std::string field_name(std::string_view field) {
    std::string out;
    out.reserve(field.size() + 2);
    out += '"';
    out += field;
    out += '"';
    return out;
}

// Longest prefix of at most `limit` bytes that does not cut a UTF-8 character in two.
std::string_view utf8_prefix(std::string_view text, size_t limit) {
    if (text.size() <= limit) return text;
    size_t cut = limit;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    return text.substr(0, cut);
}

// Field readers share one failure channel: the first fault found ends decoding, carrying the id found so far.
struct Decoder {
    RequestId id;  // set once a usable "id" is found; every later fault carries it

    CommandError fault(ProtocolError error, std::string message) const { return {id, error, std::move(message)}; }
    CommandError bad(std::string message) const { return fault(ProtocolError::BadRequest, std::move(message)); }

    static const Json* find(const Json& object, const char* name) {
        const auto it = object.find(name);
        return it == object.end() ? nullptr : &*it;
    }

    std::optional<CommandError> string_field(const Json& object, const char* name, std::string_view label,
                                             std::optional<std::string>& out) const {
        const Json* value = find(object, name);
        if (value == nullptr) return std::nullopt;
        if (!value->is_string()) return bad(field_name(label) + " must be a string");
        out = value->get<std::string>();
        return std::nullopt;
    }

    std::optional<CommandError> bounded_string_field(const Json& object, const char* name, size_t max_length,
                                                     std::optional<std::string>& out) const {
        if (auto error = string_field(object, name, name, out)) return error;
        if (out && (out->empty() || out->size() > max_length)) {
            return bad(field_name(name) + " must be 1-" + std::to_string(max_length) + " bytes long");
        }
        return std::nullopt;
    }

    std::optional<CommandError> uint_field(const Json& object, const char* name, std::string_view label,
                                           std::optional<uint64_t>& out) const {
        const Json* value = find(object, name);
        if (value == nullptr) return std::nullopt;
        out = as_uint64(*value);
        if (!out) return bad(field_name(label) + " must be a non-negative integer");
        return std::nullopt;
    }

    std::optional<CommandError> channel_field(const Json& object, std::string& out) const {
        const Json* value = find(object, "channel");
        if (value == nullptr) return bad("\"channel\" is required");
        if (!value->is_string()) return bad("\"channel\" must be a string");
        out = value->get<std::string>();
        if (!is_valid_channel_name(out)) {
            return fault(ProtocolError::InvalidChannel, "\"channel\" must be 1-255 characters of A-Za-z0-9_.:@/=-");
        }
        return std::nullopt;
    }

    // {"serial": <uint64>, "epoch": <string>}, both required: a position without its epoch cannot be checked.
    std::optional<CommandError> position(const Json& value, const std::string& label, StreamPosition& out) const {
        if (!value.is_object()) return bad(field_name(label) + " must be an object");
        std::optional<uint64_t> serial;
        if (auto error = uint_field(value, "serial", label + ".serial", serial)) return error;
        if (!serial) return bad(field_name(label + ".serial") + " is required");
        std::optional<std::string> epoch;
        if (auto error = string_field(value, "epoch", label + ".epoch", epoch)) return error;
        if (!epoch) return bad(field_name(label + ".epoch") + " is required");
        out.serial = *serial;
        out.epoch = std::move(*epoch);
        return std::nullopt;
    }

    Result<Command, CommandError> connect(const Json& object) const {
        ConnectCommand command;
        command.id = id;
        if (auto error = string_field(object, "token", "token", command.token)) return fail(*error);
        if (auto error = bounded_string_field(object, "session", kMaxSessionLength, command.session)) {
            return fail(*error);
        }
        if (const Json* positions = find(object, "positions")) {
            if (!positions->is_object()) return fail(bad("\"positions\" must be an object"));
            for (const auto& [channel, value] : positions->items()) {
                if (!is_valid_channel_name(channel)) {
                    return fail(fault(ProtocolError::InvalidChannel,
                                      "\"positions\" keys must be channel names: 1-255 characters of "
                                      "A-Za-z0-9_.:@/=-"));
                }
                StreamPosition parsed;
                if (auto error = position(value, "positions." + channel, parsed)) return fail(*error);
                command.positions.insert_or_assign(channel, std::move(parsed));
            }
        }
        return Command{std::move(command)};
    }

    Result<Command, CommandError> subscribe(const Json& object) const {
        SubscribeCommand command;
        command.id = id;
        if (auto error = channel_field(object, command.channel)) return fail(*error);
        if (const Json* since = find(object, "since")) {
            StreamPosition parsed;
            if (auto error = position(*since, "since", parsed)) return fail(*error);
            command.since = std::move(parsed);
        }
        return Command{std::move(command)};
    }

    Result<Command, CommandError> unsubscribe(const Json& object) const {
        UnsubscribeCommand command;
        command.id = id;
        if (auto error = channel_field(object, command.channel)) return fail(*error);
        return Command{std::move(command)};
    }

    Result<Command, CommandError> publish(const Json& object) const {
        PublishCommand command;
        command.id = id;
        if (auto error = channel_field(object, command.channel)) return fail(*error);
        const Json* data = find(object, "data");
        if (data == nullptr) return fail(bad("\"data\" is required"));
        try {
            // The parser already refused invalid UTF-8; strict still guards against ever emitting it.
            command.data = data->dump(-1, ' ', false, Json::error_handler_t::strict);
        } catch (const Json::exception&) {
            return fail(bad("\"data\" cannot be re-encoded as JSON"));
        }
        if (auto error = bounded_string_field(object, "key", kMaxKeyLength, command.key)) return fail(*error);
        return Command{std::move(command)};
    }

    Result<Command, CommandError> history(const Json& object) const {
        HistoryCommand command;
        command.id = id;
        if (auto error = channel_field(object, command.channel)) return fail(*error);
        if (auto error = uint_field(object, "since", "since", command.since)) return fail(*error);
        if (auto error = uint_field(object, "limit", "limit", command.limit)) return fail(*error);
        return Command{std::move(command)};
    }

    Result<Command, CommandError> refresh(const Json& object) const {
        RefreshCommand command;
        command.id = id;
        std::optional<std::string> token;
        if (auto error = string_field(object, "token", "token", token)) return fail(*error);
        if (!token) return fail(bad("\"token\" is required"));
        if (token->empty()) return fail(bad("\"token\" must not be empty"));
        command.token = std::move(*token);
        return Command{std::move(command)};
    }

    Result<Command, CommandError> decode(std::string_view text) {
        if (!nesting_within_limit(text)) {
            return fail(bad("JSON nested deeper than " + std::to_string(kMaxNestingDepth) + " levels"));
        }
        const Json object = Json::parse(text.data(), text.data() + text.size(), nullptr, /*allow_exceptions=*/false);
        if (object.is_discarded()) return fail(bad("not valid JSON"));
        if (!object.is_object()) return fail(bad("a command must be a JSON object"));

        // The id comes first so every later error can be matched to its request.
        if (const Json* raw_id = find(object, "id")) {
            id = as_int64(*raw_id);
            if (!id) return fail(bad("\"id\" must be an integer"));
        }

        const Json* op = find(object, "op");
        if (op == nullptr) return fail(bad("\"op\" is required"));
        if (!op->is_string()) return fail(bad("\"op\" must be a string"));
        const auto& name = op->get_ref<const std::string&>();
        if (name == "connect") return connect(object);
        if (name == "subscribe") return subscribe(object);
        if (name == "unsubscribe") return unsubscribe(object);
        if (name == "publish") return publish(object);
        if (name == "history") return history(object);
        if (name == "ping") return Command{PingCommand{id}};
        if (name == "refresh") return refresh(object);
        std::string message = "unknown op \"";
        message += utf8_prefix(name, kMaxEchoedOpLength);
        message += '"';
        return fail(fault(ProtocolError::UnknownOp, std::move(message)));
    }
};

}  // namespace

Result<Command, CommandError> decode_command(std::string_view text) {
    Decoder decoder;
    try {
        return decoder.decode(text);
    } catch (const Json::exception&) {
        return fail(CommandError{decoder.id, ProtocolError::BadRequest, "malformed command"});
    } catch (const std::exception&) {
        // Only allocation failure is left; it says nothing about the client's input.
        return fail(CommandError{decoder.id, ProtocolError::Internal, "internal error"});
    }
}

RequestId command_id(const Command& command) {
    return std::visit([](const auto& c) { return c.id; }, command);
}

}  // namespace herald
