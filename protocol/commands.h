// The client → server half of herald.v1.json: one JSON text message decoded into one typed command.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "protocol/errors.h"
#include "protocol/result.h"

namespace herald {

// A position in a channel's stream: the last serial received, within an epoch.
struct StreamPosition {
    uint64_t serial = 0;
    std::string epoch;
    bool operator==(const StreamPosition&) const = default;
};

using RequestId = std::optional<int64_t>;

struct ConnectCommand {
    RequestId id;
    std::optional<std::string> token;
    std::optional<std::string> session;
    std::map<std::string, StreamPosition> positions;  // channel → last received; names validated
};
struct SubscribeCommand {
    RequestId id;
    std::string channel;
    std::optional<StreamPosition> since;
};
struct UnsubscribeCommand {
    RequestId id;
    std::string channel;
};
struct PublishCommand {
    RequestId id;
    std::string channel;
    std::string data;  // the "data" value re-serialised as compact JSON text, ready to embed
    std::optional<std::string> key;  // idempotency key, 1–128 chars
};
struct HistoryCommand {
    RequestId id;
    std::string channel;
    std::optional<uint64_t> since;  // messages with serial > since
    std::optional<uint64_t> limit;  // at most this many (the broker caps it)
};
struct PingCommand {
    RequestId id;
};
// A new token for a live connection (before or after `token_expired`); it must name the same subject.
struct RefreshCommand {
    RequestId id;
    std::string token;  // non-empty; verified by the broker
};

using Command = std::variant<ConnectCommand, SubscribeCommand, UnsubscribeCommand, PublishCommand, HistoryCommand,
                             PingCommand, RefreshCommand>;

struct CommandError {
    RequestId id;          // echoed when the message was an object with a usable integer "id"
    ProtocolError error;   // BadRequest, UnknownOp or InvalidChannel
    std::string message;   // human text naming the field at fault, e.g. "\"channel\" must be a string"
};

Result<Command, CommandError> decode_command(std::string_view text);

RequestId command_id(const Command& command);

}  // namespace herald
