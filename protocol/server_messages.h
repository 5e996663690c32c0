// The server → client half of herald.v1.json. Each encoder returns compact JSON text for one text frame.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/commands.h"
#include "protocol/errors.h"

namespace herald {

struct ConnectedReply {
    RequestId id;
    std::string session;
    std::string node;
    uint32_t heartbeat_seconds = 25;
    bool resumed = false;
};
struct SubscribedReply {
    RequestId id;  // absent for subscriptions restored from a session
    std::string channel;
    uint64_t serial = 0;  // the channel's top serial when the subscription took effect
    std::string epoch;
    bool resumed = false;
    uint64_t replayed = 0;
    std::optional<std::string> reason;  // why not resumed: history_expired, epoch_changed, ...
};
struct HistoryEntry {
    uint64_t serial = 0;
    std::string data;  // JSON text
};
struct HistoryReply {
    RequestId id;
    std::string channel;
    std::string epoch;
    uint64_t serial = 0;  // top
    std::vector<HistoryEntry> messages;
};
struct DiscontinuityNotice {
    std::string channel;
    std::string epoch;
    uint64_t serial = 0;  // the serial the stream continues after
    std::string reason;
};

std::string encode_connected(const ConnectedReply& reply);
std::string encode_subscribed(const SubscribedReply& reply);
std::string encode_unsubscribed(RequestId id, std::string_view channel, std::optional<std::string_view> reason = {});
std::string encode_published(RequestId id, std::string_view channel, uint64_t serial);
std::string encode_history(const HistoryReply& reply);
std::string encode_discontinuity(const DiscontinuityNotice& notice);
std::string encode_pong(RequestId id);
// {"op":"refreshed","id":..,"expires":<unix seconds>} — the new token's exp; 0 when tokens are not verified.
std::string encode_refreshed(RequestId id, int64_t expires);
// {"op":"error","id":..,"code":<error_info(error).code>,"message":<message or the table's default>}
std::string encode_error(RequestId id, ProtocolError error, std::string_view message = {});
// {"op":"message","channel":..,"serial":..,"data":<data_json verbatim>} — built once per node per message.
std::string encode_message(std::string_view channel, uint64_t serial, std::string_view data_json);

}  // namespace herald
