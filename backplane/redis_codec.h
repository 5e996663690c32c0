// What the Redis backplane writes and reads, without any connection: the key layout, the pub/sub payload, the
// session encoding, epoch candidates and script digests. Unit-tested without a server.
//
// Key layout (prefix "herald"; the channel name is the hash tag, so all keys of a channel share one cluster slot):
//   herald:{<channel>}:meta            hash {epoch, top}: the channel's lineage
//   herald:{<channel>}:history         stream, entry ID "<serial>-0", fields t (store ms), p (published_at_us), d
//   herald:{<channel>}:idem:<key>      string "<serial> <epoch>", PX = the retention TTL
//   herald:{<channel>}:pub             pub/sub channel carrying the pre-encoded deliveries
//   herald:session:{<id>}              string, JSON session record, PX = the session TTL
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "backplane/backplane.h"
#include "protocol/result.h"

namespace herald {

class RedisKeyspace {
public:
    explicit RedisKeyspace(std::string prefix);

    std::string meta(std::string_view channel) const;
    std::string history(std::string_view channel) const;
    std::string idempotency(std::string_view channel, std::string_view key) const;
    std::string pubsub(std::string_view channel) const;
    std::string session(std::string_view session_id) const;
    // The Herald channel of a pub/sub channel name made by pubsub(); nothing for any other name.
    std::optional<std::string> channel_of_pubsub(std::string_view redis_channel) const;

private:
    std::string channel_key(std::string_view channel, std::string_view suffix) const;
    std::string prefix_;
};

// The PUBLISH payload, made by publish.lua: "<epoch>\n<serial>\n<published_at_us>\n<data>". Only the first three
// newlines separate fields: data (JSON text) may contain newlines of its own. Binary-safe, parsed without JSON.
std::string encode_delivery_payload(std::string_view epoch, uint64_t serial, uint64_t published_at_us,
                                    std::string_view data);
std::optional<Delivery> decode_delivery_payload(std::string channel, std::string_view payload);

// A stream entry ID made by the scripts, "<serial>-0" → serial.
std::optional<uint64_t> serial_of_stream_id(std::string_view id);

// Sessions as JSON: {"subject":"…","positions":{"<channel>":{"serial":N,"epoch":"…"}}}.
std::string encode_session(const SessionRecord& record);
Result<SessionRecord, std::string> decode_session(std::string_view json);

// Epoch candidates: "<16 random hex digits>-<counter>", the prefix drawn once per generator (OpenSSL RAND_bytes,
// std::random_device as fallback), so no two nodes and no two processes offer the same epoch. A script keeps the
// candidate only when the channel has no epoch.
class EpochGenerator {
public:
    EpochGenerator();
    std::string next();

private:
    std::string prefix_;
    uint64_t counter_ = 0;
};

// Lowercase hex SHA1 of a script body: the name EVALSHA knows it by.
std::string script_sha1(std::string_view body);

}  // namespace herald
