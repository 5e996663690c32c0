// The one table of protocol errors: each maps to its `error.code` string, whether the connection closes, and with
// which close code. Broker, metrics and tests all read this table instead of repeating codes.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "protocol/close_code.h"

namespace herald {

enum class ProtocolError : uint8_t {
    // Command-level: answered with {"op":"error"}; the connection stays open unless close_code is set.
    BadRequest,        // not JSON, not an object, or a field of the wrong type / missing
    UnknownOp,         // "op" names no command
    InvalidChannel,    // channel empty, too long, or outside [A-Za-z0-9_.:@/=-]
    NotConnected,      // a command other than connect/ping before connect
    AlreadyConnected,  // a second connect on the same connection
    AlreadySubscribed,
    NotSubscribed,
    PublishDisabled,   // client publishing turned off by configuration
    MessageTooLarge,   // a publish whose data exceeds the message limit after encoding
    Unavailable,       // backplane unreachable; retry later
    Internal,          // unexpected backplane failure
    Forbidden,         // the connection's capabilities do not allow this operation on this channel
    TokenExpired,      // the token's exp passed on a live connection: send `refresh` within the grace period
    RateLimited,       // over --client-rate: the command was not executed
    LimitExceeded,     // a per-connection limit (--max-subscriptions) is reached
    ConnectTimeout,    // no connect within the deadline → close 1008
    // Frame-level: the connection closes with the given code.
    FrameProtocol,     // RFC 6455 violation → 1002
    InvalidUtf8,       // → 1007
    BinaryMessage,     // → 1003
    FrameTooBig,       // → 1009
    HeartbeatTimeout,  // silent for two heartbeat intervals → 1008
    SlowConsumer,      // outbound queue over its limit → 4008
    // Sent as an `error` (with the command's id) and then the connection closes with the given code.
    Unauthorized,      // missing or invalid token, failed refresh, or no refresh within the grace → 4001
    // Close only.
    RateLimitSustained,  // over --client-rate for 10 s straight → 4029
};

struct ProtocolErrorInfo {
    ProtocolError error;
    std::string_view code;               // the `error.code` sent to clients; also the metrics label
    std::optional<CloseCode> close_code; // set when this error ends the connection
    std::string_view message;            // default human text
};

const ProtocolErrorInfo& error_info(ProtocolError e);
// For tests and docs: every row of the table in declaration order.
std::span<const ProtocolErrorInfo> all_protocol_errors();

}  // namespace herald
