// Key names, pub/sub payloads, session JSON, epoch candidates and script digests; see redis_codec.h.
#include "backplane/redis_codec.h"

#include <array>
#include <charconv>
#include <random>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace herald {
namespace {

constexpr char kHex[] = "0123456789abcdef";

std::string hex(const unsigned char* bytes, size_t size) {
    std::string out;
    out.reserve(size * 2);
    for (size_t i = 0; i < size; ++i) {
        out.push_back(kHex[bytes[i] >> 4]);
        out.push_back(kHex[bytes[i] & 0x0f]);
    }
    return out;
}

std::optional<uint64_t> parse_u64(std::string_view text) {
    if (text.empty()) return std::nullopt;
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

// Splits off the text up to the next '\n'; false when there is none.
bool take_line(std::string_view& rest, std::string_view& line) {
    const size_t newline = rest.find('\n');
    if (newline == std::string_view::npos) return false;
    line = rest.substr(0, newline);
    rest.remove_prefix(newline + 1);
    return true;
}

}  // namespace

RedisKeyspace::RedisKeyspace(std::string prefix) : prefix_(std::move(prefix)) {}

std::string RedisKeyspace::channel_key(std::string_view channel, std::string_view suffix) const {
    std::string key;
    key.reserve(prefix_.size() + channel.size() + suffix.size() + 4);
    key.append(prefix_).append(":{").append(channel).append("}:").append(suffix);
    return key;
}

std::string RedisKeyspace::meta(std::string_view channel) const { return channel_key(channel, "meta"); }
std::string RedisKeyspace::history(std::string_view channel) const { return channel_key(channel, "history"); }
std::string RedisKeyspace::pubsub(std::string_view channel) const { return channel_key(channel, "pub"); }

std::string RedisKeyspace::idempotency(std::string_view channel, std::string_view key) const {
    return channel_key(channel, "idem:").append(key);
}

std::string RedisKeyspace::session(std::string_view session_id) const {
    std::string key;
    key.append(prefix_).append(":session:{").append(session_id).append("}");
    return key;
}

std::optional<std::string> RedisKeyspace::channel_of_pubsub(std::string_view redis_channel) const {
    const std::string head = prefix_ + ":{";
    constexpr std::string_view tail = "}:pub";
    if (redis_channel.size() <= head.size() + tail.size()) return std::nullopt;
    if (redis_channel.substr(0, head.size()) != head) return std::nullopt;
    if (redis_channel.substr(redis_channel.size() - tail.size()) != tail) return std::nullopt;
    return std::string(redis_channel.substr(head.size(), redis_channel.size() - head.size() - tail.size()));
}

std::string encode_delivery_payload(std::string_view epoch, uint64_t serial, uint64_t published_at_us,
                                    std::string_view data) {
    std::string out;
    out.reserve(epoch.size() + data.size() + 44);
    out.append(epoch).append("\n").append(std::to_string(serial)).append("\n");
    out.append(std::to_string(published_at_us)).append("\n").append(data);
    return out;
}

std::optional<Delivery> decode_delivery_payload(std::string channel, std::string_view payload) {
    std::string_view rest = payload;
    std::string_view epoch, serial, published_at;
    if (!take_line(rest, epoch) || !take_line(rest, serial) || !take_line(rest, published_at)) return std::nullopt;
    if (epoch.empty()) return std::nullopt;
    const auto serial_value = parse_u64(serial);
    const auto published_value = parse_u64(published_at);
    if (!serial_value || *serial_value == 0 || !published_value) return std::nullopt;
    return Delivery{std::move(channel), std::string(epoch),
                    StoredMessage{*serial_value, std::string(rest), *published_value}};
}

std::optional<uint64_t> serial_of_stream_id(std::string_view id) {
    const size_t dash = id.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    return parse_u64(id.substr(0, dash));
}

std::string encode_session(const SessionRecord& record) {
    nlohmann::json positions = nlohmann::json::object();
    for (const auto& [channel, position] : record.positions) {
        positions[channel] = {{"serial", position.serial}, {"epoch", position.epoch}};
    }
    return nlohmann::json{{"subject", record.subject}, {"positions", std::move(positions)}}.dump();
}

Result<SessionRecord, std::string> decode_session(std::string_view text) {
    const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.is_object()) return fail(std::string("session record is not a JSON object"));
    SessionRecord record;
    if (auto it = json.find("subject"); it != json.end()) {
        if (!it->is_string()) return fail(std::string("session subject is not a string"));
        record.subject = it->get<std::string>();
    }
    if (auto it = json.find("positions"); it != json.end()) {
        if (!it->is_object()) return fail(std::string("session positions is not an object"));
        for (const auto& [channel, value] : it->items()) {
            if (!value.is_object()) return fail(std::string("session position is not an object"));
            const auto serial = value.find("serial");
            const auto epoch = value.find("epoch");
            if (serial == value.end() || !serial->is_number_unsigned() || epoch == value.end() ||
                !epoch->is_string()) {
                return fail(std::string("session position needs an unsigned serial and a string epoch"));
            }
            record.positions.emplace(channel, StreamPosition{serial->get<uint64_t>(), epoch->get<std::string>()});
        }
    }
    return record;
}

EpochGenerator::EpochGenerator() {
    std::array<unsigned char, 8> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
        std::random_device device;
        for (auto& b : bytes) b = static_cast<unsigned char>(device());
    }
    prefix_ = hex(bytes.data(), bytes.size());
}

std::string EpochGenerator::next() { return prefix_ + "-" + std::to_string(++counter_); }

std::string script_sha1(std::string_view body) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    if (EVP_Digest(body.data(), body.size(), digest.data(), &size, EVP_sha1(), nullptr) != 1) return {};
    return hex(digest.data(), size);
}

}  // namespace herald
