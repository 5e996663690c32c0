// The backplane contract: what a node needs from shared state — serials, history, idempotency keys, sessions and
// cross-node delivery. The broker talks only to this interface; the in-memory and Redis implementations both pass
// the one test suite in tests/unit/backplane/.
//
// Guarantees every implementation gives:
//  * Serials: each channel has a counter within an epoch. publish() assigns the next serial (1, 2, 3, … with no
//    holes) and appends the message to the channel's history in the same atomic step, so history order, serial
//    order and delivery order are one order.
//  * Epoch: an opaque string created on the channel's first touch (publish or history read). It changes only when
//    the channel's lineage is lost (store wiped, channel state expired); serials then restart from 1.
//  * Delivery: after subscribe()'s ready callback, every message published on that channel is delivered to this
//    node's listener exactly once and in serial order, unless the implementation loses it (e.g. Redis pub/sub
//    reconnect) — then it calls on_resync() and the broker repairs the gap from history.
//  * Unsubscribe: once unsubscribe() returns, no delivery of that channel reaches the listener — not even one
//    already queued — until the channel is subscribed again.
//  * Idempotency: a publish whose key was already used on that channel within the retention TTL is not stored or
//    delivered again; it reports the first serial with duplicate = true.
//  * Callbacks run on the node's loop, never synchronously inside the call that registered them, and never after
//    close() has started.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "protocol/commands.h"  // StreamPosition
#include "protocol/result.h"

namespace herald {

enum class BackplaneErrorKind { Unavailable, Internal };

struct BackplaneError {
    BackplaneErrorKind kind = BackplaneErrorKind::Internal;
    std::string detail;
};

template <typename T>
using BackplaneCallback = std::function<void(Result<T, BackplaneError>)>;

// History bounds for a channel, decided by the broker from its per-namespace configuration.
struct RetentionPolicy {
    uint64_t max_messages = 1000;
    uint64_t ttl_ms = 300'000;
};

struct PublishRequest {
    std::string channel;
    std::string data;  // JSON text
    std::optional<std::string> idempotency_key;
    RetentionPolicy retention;
    uint64_t published_at_us = 0;  // publisher's wall clock, carried to every delivery for latency metrics
};

struct PublishOutcome {
    uint64_t serial = 0;
    std::string epoch;
    bool duplicate = false;  // the key was seen before; nothing was stored or delivered
};

struct StoredMessage {
    uint64_t serial = 0;
    std::string data;  // JSON text
    uint64_t published_at_us = 0;
};

struct HistoryRequest {
    std::string channel;
    std::optional<uint64_t> since;  // only messages with serial > since; none: from the oldest held
    std::optional<uint64_t> limit;  // at most this many, oldest first; none: all; 0: only epoch/top/oldest
    bool newest = false;            // with no since: the newest `limit` messages (still returned oldest first)
    RetentionPolicy retention;      // messages older than retention.ttl_ms are not returned
};

struct HistorySlice {
    std::string epoch;
    uint64_t top = 0;     // the channel's last assigned serial (0: nothing published in this epoch)
    uint64_t oldest = 1;  // the oldest serial still held; top + 1 when history is empty
    std::vector<StoredMessage> messages;
};

struct Delivery {
    std::string channel;
    std::string epoch;
    StoredMessage message;
};

struct SessionRecord {
    std::string subject;  // authenticated subject; empty for anonymous
    std::map<std::string, StreamPosition> positions;  // subscribed channels and the last serial delivered
};

class BackplaneListener {
public:
    virtual ~BackplaneListener() = default;
    virtual void on_delivery(const Delivery& delivery) = 0;
    // The backplane became reachable (true) or unreachable (false); drives /readyz.
    virtual void on_availability(bool up) = 0;
    // Deliveries may have been lost (pub/sub reconnected): catch every active channel up from history.
    virtual void on_resync() = 0;
};

class Backplane {
public:
    virtual ~Backplane() = default;

    virtual void set_listener(BackplaneListener* listener) = 0;
    virtual bool available() const = 0;
    // Short name for logs and /readyz ("memory", "redis").
    virtual std::string kind() const = 0;

    virtual void publish(PublishRequest request, BackplaneCallback<PublishOutcome> done) = 0;
    virtual void history(HistoryRequest request, BackplaneCallback<HistorySlice> done) = 0;

    // Start / stop cross-node delivery of a channel to this node. The broker calls subscribe once per channel,
    // when its first local subscriber arrives, and unsubscribe when its last leaves.
    virtual void subscribe(const std::string& channel, BackplaneCallback<Unit> ready) = 0;
    virtual void unsubscribe(const std::string& channel) = 0;

    // Sessions expire ttl_ms after the last save.
    virtual void save_session(const std::string& session_id, SessionRecord record, uint64_t ttl_ms,
                              BackplaneCallback<Unit> done) = 0;
    virtual void load_session(const std::string& session_id,
                              BackplaneCallback<std::optional<SessionRecord>> done) = 0;

    // Releases the implementation's loop handles; `done` runs once they are closed. No callback runs after.
    virtual void close(std::function<void()> done) = 0;
};

}  // namespace herald
