// The single source of every protocol error's wire code, close code and default text; the broker, metrics labels,
// the docs and the tests all read these rows, so a code is spelled exactly once.
#include "protocol/errors.h"

#include <array>
#include <cstddef>

namespace herald {
namespace {

using enum ProtocolError;

// Rows must stay in the enum's declaration order: error_info() indexes by the enum value.
constexpr std::array kErrors{
    ProtocolErrorInfo{BadRequest, "bad_request", std::nullopt, "malformed command"},
    ProtocolErrorInfo{UnknownOp, "unknown_op", std::nullopt, "unknown op"},
    ProtocolErrorInfo{InvalidChannel, "invalid_channel", std::nullopt,
                      "channel names are 1-255 characters of A-Za-z0-9_.:@/=-"},
    ProtocolErrorInfo{NotConnected, "not_connected", std::nullopt, "send connect first"},
    ProtocolErrorInfo{AlreadyConnected, "already_connected", std::nullopt, "already connected"},
    ProtocolErrorInfo{AlreadySubscribed, "already_subscribed", std::nullopt, "already subscribed to this channel"},
    ProtocolErrorInfo{NotSubscribed, "not_subscribed", std::nullopt, "not subscribed to this channel"},
    ProtocolErrorInfo{PublishDisabled, "publish_disabled", std::nullopt, "publishing from clients is disabled"},
    ProtocolErrorInfo{MessageTooLarge, "message_too_large", std::nullopt, "message exceeds the size limit"},
    ProtocolErrorInfo{Unavailable, "unavailable", std::nullopt, "temporarily unavailable, retry later"},
    ProtocolErrorInfo{Internal, "internal", std::nullopt, "internal error"},
    ProtocolErrorInfo{Forbidden, "forbidden", std::nullopt, "not allowed on this channel"},
    ProtocolErrorInfo{TokenExpired, "token_expired", std::nullopt, "token expired: send refresh with a new token"},
    ProtocolErrorInfo{RateLimited, "rate_limited", std::nullopt, "too many commands: slow down"},
    ProtocolErrorInfo{LimitExceeded, "limit_exceeded", std::nullopt, "limit reached"},
    ProtocolErrorInfo{ConnectTimeout, "connect_timeout", CloseCode::PolicyViolation, "no connect within the deadline"},
    ProtocolErrorInfo{FrameProtocol, "protocol_error", CloseCode::ProtocolError, "WebSocket protocol violation"},
    ProtocolErrorInfo{InvalidUtf8, "invalid_utf8", CloseCode::InvalidPayload, "text message is not valid UTF-8"},
    ProtocolErrorInfo{BinaryMessage, "binary_message", CloseCode::UnsupportedData, "binary messages are not supported"},
    ProtocolErrorInfo{FrameTooBig, "message_too_big", CloseCode::MessageTooBig, "message exceeds the size limit"},
    ProtocolErrorInfo{HeartbeatTimeout, "heartbeat_timeout", CloseCode::PolicyViolation, "heartbeat timeout"},
    ProtocolErrorInfo{SlowConsumer, "slow_consumer", CloseCode::SlowConsumer, "slow consumer"},
    ProtocolErrorInfo{Unauthorized, "unauthorized", CloseCode::Unauthorized, "authentication required"},
    ProtocolErrorInfo{RateLimitSustained, "rate_limit_sustained", CloseCode::RateLimited,
                      "over the command rate limit for too long"},
};

constexpr bool rows_follow_declaration_order() {
    for (size_t i = 0; i < kErrors.size(); ++i) {
        if (static_cast<size_t>(kErrors[i].error) != i) return false;
    }
    return true;
}
static_assert(kErrors.size() == static_cast<size_t>(RateLimitSustained) + 1, "every ProtocolError needs a row");
static_assert(rows_follow_declaration_order(), "row i must describe the ProtocolError with value i");

}  // namespace

const ProtocolErrorInfo& error_info(ProtocolError e) {
    const auto index = static_cast<size_t>(e);
    // A value outside the enum (a bad cast somewhere) must not read past the table.
    if (index >= kErrors.size()) return kErrors[static_cast<size_t>(Internal)];
    return kErrors[index];
}

std::span<const ProtocolErrorInfo> all_protocol_errors() { return kErrors; }

}  // namespace herald
