// Encodes server → client messages as compact JSON with a fixed key order, by appending to one string: the order is
// part of the documented wire format, and encode_message runs once per published message per node.
#include "protocol/server_messages.h"

#include <charconv>

#include "protocol/channel_name.h"

namespace herald {
namespace {

void append_uint(std::string& out, uint64_t value) {
    char digits[20];
    const auto result = std::to_chars(digits, digits + sizeof digits, value);
    out.append(digits, result.ptr);
}

void append_int(std::string& out, int64_t value) {
    char digits[20];
    const auto result = std::to_chars(digits, digits + sizeof digits, value);
    out.append(digits, result.ptr);
}

void append_bool(std::string& out, bool value) { out += value ? "true" : "false"; }

// Length of the well-formed UTF-8 character starting at text[i] (Unicode Table 3-7), or 0 if it is malformed.
size_t utf8_sequence_length(std::string_view text, size_t i) {
    const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char lead = byte(i);
    size_t length = 0;
    unsigned char lower = 0x80, upper = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        if (lead == 0xE0) lower = 0xA0;
        if (lead == 0xED) upper = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        if (lead == 0xF0) lower = 0x90;
        if (lead == 0xF4) upper = 0x8F;
    } else {
        return 0;
    }
    if (i + length > text.size()) return 0;
    if (byte(i + 1) < lower || byte(i + 1) > upper) return 0;
    for (size_t k = 2; k < length; ++k) {
        if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
    }
    return length;
}

// Strings from outside the protocol's control (node names, epochs, error text) may hold quotes, control characters
// or even broken UTF-8; each malformed byte becomes U+FFFD so the frame always stays valid JSON in valid UTF-8.
void append_json_string(std::string& out, std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    size_t i = 0;
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x80) {
            const size_t length = utf8_sequence_length(text, i);
            if (length == 0) {
                out += "\\ufffd";
                ++i;
            } else {
                out.append(text.substr(i, length));
                i += length;
            }
            continue;
        }
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out += kHex[c >> 4];
                    out += kHex[c & 0x0F];
                } else {
                    out += static_cast<char>(c);
                }
        }
        ++i;
    }
    out += '"';
}

// Validated channel names contain nothing JSON needs escaped, so they are copied as they are; anything else is
// escaped rather than trusted, so an unvalidated name can never break the frame.
void append_channel(std::string& out, std::string_view channel) {
    if (is_valid_channel_name(channel)) {
        out += '"';
        out += channel;
        out += '"';
    } else {
        append_json_string(out, channel);
    }
}

// Opens {"op":"<op>" and adds "id" when the request carried one.
void open_reply(std::string& out, std::string_view op, RequestId id) {
    out += "{\"op\":\"";
    out += op;
    out += '"';
    if (id) {
        out += ",\"id\":";
        append_int(out, *id);
    }
}

}  // namespace

std::string encode_connected(const ConnectedReply& reply) {
    std::string out;
    out.reserve(96 + reply.session.size() + reply.node.size());
    open_reply(out, "connected", reply.id);
    out += ",\"session\":";
    append_json_string(out, reply.session);
    out += ",\"node\":";
    append_json_string(out, reply.node);
    out += ",\"heartbeat\":";
    append_uint(out, reply.heartbeat_seconds);
    out += ",\"resumed\":";
    append_bool(out, reply.resumed);
    out += '}';
    return out;
}

std::string encode_subscribed(const SubscribedReply& reply) {
    std::string out;
    out.reserve(128 + reply.channel.size() + reply.epoch.size());
    open_reply(out, "subscribed", reply.id);
    out += ",\"channel\":";
    append_channel(out, reply.channel);
    out += ",\"serial\":";
    append_uint(out, reply.serial);
    out += ",\"epoch\":";
    append_json_string(out, reply.epoch);
    out += ",\"resumed\":";
    append_bool(out, reply.resumed);
    out += ",\"replayed\":";
    append_uint(out, reply.replayed);
    if (reply.reason) {
        out += ",\"reason\":";
        append_json_string(out, *reply.reason);
    }
    out += '}';
    return out;
}

std::string encode_unsubscribed(RequestId id, std::string_view channel, std::optional<std::string_view> reason) {
    std::string out;
    out.reserve(64 + channel.size() + (reason ? reason->size() + 12 : 0));
    open_reply(out, "unsubscribed", id);
    out += ",\"channel\":";
    append_channel(out, channel);
    if (reason) {
        out += ",\"reason\":";
        append_json_string(out, *reason);
    }
    out += '}';
    return out;
}

std::string encode_published(RequestId id, std::string_view channel, uint64_t serial) {
    std::string out;
    out.reserve(80 + channel.size());
    open_reply(out, "published", id);
    out += ",\"channel\":";
    append_channel(out, channel);
    out += ",\"serial\":";
    append_uint(out, serial);
    out += '}';
    return out;
}

std::string encode_history(const HistoryReply& reply) {
    size_t size = 96 + reply.channel.size() + reply.epoch.size();
    for (const HistoryEntry& entry : reply.messages) size += 32 + entry.data.size();
    std::string out;
    out.reserve(size);
    open_reply(out, "history", reply.id);
    out += ",\"channel\":";
    append_channel(out, reply.channel);
    out += ",\"epoch\":";
    append_json_string(out, reply.epoch);
    out += ",\"serial\":";
    append_uint(out, reply.serial);
    out += ",\"messages\":[";
    bool first = true;
    for (const HistoryEntry& entry : reply.messages) {
        if (!first) out += ',';
        first = false;
        out += "{\"serial\":";
        append_uint(out, entry.serial);
        out += ",\"data\":";
        out += entry.data;
        out += '}';
    }
    out += "]}";
    return out;
}

std::string encode_discontinuity(const DiscontinuityNotice& notice) {
    std::string out;
    out.reserve(96 + notice.channel.size() + notice.epoch.size() + notice.reason.size());
    open_reply(out, "discontinuity", std::nullopt);
    out += ",\"channel\":";
    append_channel(out, notice.channel);
    out += ",\"epoch\":";
    append_json_string(out, notice.epoch);
    out += ",\"serial\":";
    append_uint(out, notice.serial);
    out += ",\"reason\":";
    append_json_string(out, notice.reason);
    out += '}';
    return out;
}

std::string encode_pong(RequestId id) {
    std::string out;
    out.reserve(40);
    open_reply(out, "pong", id);
    out += '}';
    return out;
}

std::string encode_refreshed(RequestId id, int64_t expires) {
    std::string out;
    out.reserve(64);
    open_reply(out, "refreshed", id);
    out += ",\"expires\":";
    append_int(out, expires);
    out += '}';
    return out;
}

std::string encode_error(RequestId id, ProtocolError error, std::string_view message) {
    const ProtocolErrorInfo& info = error_info(error);
    const std::string_view text = message.empty() ? info.message : message;
    std::string out;
    out.reserve(64 + info.code.size() + text.size());
    open_reply(out, "error", id);
    out += ",\"code\":\"";
    out += info.code;  // table codes are plain ASCII identifiers
    out += "\",\"message\":";
    append_json_string(out, text);
    out += '}';
    return out;
}

std::string encode_message(std::string_view channel, uint64_t serial, std::string_view data_json) {
    static constexpr std::string_view kOpen = "{\"op\":\"message\",\"channel\":\"";
    static constexpr std::string_view kSerial = "\",\"serial\":";
    static constexpr std::string_view kData = ",\"data\":";
    std::string out;
    out.reserve(kOpen.size() + channel.size() + kSerial.size() + 20 + kData.size() + data_json.size() + 1);
    // No validation here: every channel that reaches a subscriber was validated when it was subscribed to or
    // published on, and this runs once per message.
    out += kOpen;
    out += channel;
    out += kSerial;
    append_uint(out, serial);
    out += kData;
    out += data_json;
    out += '}';
    return out;
}

}  // namespace herald
