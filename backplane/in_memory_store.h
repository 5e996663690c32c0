// The embedded backplane's shared state: channels (epoch, serial counter, bounded history, idempotency keys) and
// sessions. Thread-safe, so several event loops in one process can each attach an InMemoryBackplane and behave
// as nodes of one cluster.
//
// Time: every expiry is "expired once now >= stored_at + ttl", so a ttl of 0 keeps nothing. The clock only has to be
// monotonic; the default is std::chrono::steady_clock in milliseconds.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "backplane/backplane.h"

namespace herald {

class InMemoryBackplane;

class InMemoryStore {
public:
    using Clock = std::function<uint64_t()>;  // milliseconds; injectable so tests can move time
    explicit InMemoryStore(Clock now_ms = {});

    // Everything below is called by InMemoryBackplane; all of it takes the one mutex.
    PublishOutcome publish(const PublishRequest& request);
    HistorySlice history(const HistoryRequest& request);
    void save_session(const std::string& id, SessionRecord record, uint64_t ttl_ms);
    std::optional<SessionRecord> load_session(const std::string& id);

    void attach(InMemoryBackplane* node);
    void detach(InMemoryBackplane* node);
    // Registers the node for deliveries of `channel` and runs `on_registered` under the store lock, so the node can
    // queue its ready notification ahead of any delivery published after registration.
    void subscribe(InMemoryBackplane* node, const std::string& channel, const std::function<void()>& on_registered);
    void unsubscribe(InMemoryBackplane* node, const std::string& channel);

    // Drops every channel and session, as a Redis FLUSHALL would; channels get new epochs. Node registrations
    // (attach/subscribe) survive, as Redis pub/sub subscriptions survive a FLUSHALL. For tests.
    void wipe();

    // What the store holds right now, after expired sessions and idempotency keys have been swept. For tests and
    // gauges.
    struct Stats {
        size_t channels = 0;
        size_t messages = 0;
        size_t idempotency_keys = 0;
        size_t sessions = 0;
    };
    Stats stats();

private:
    struct Entry {
        StoredMessage message;
        uint64_t stored_at_ms = 0;  // the store's clock, for age pruning (published_at_us is the publisher's)
    };
    struct KeyRecord {
        uint64_t serial = 0;
        uint64_t expires_at_ms = 0;
    };
    struct Channel {
        std::string epoch;
        uint64_t top = 0;
        std::deque<Entry> history;  // serials top - size + 1 .. top, contiguous
        std::unordered_map<std::string, KeyRecord> keys;
        // Keys in recording order, for lazy expiry from the front; an entry whose expiry no longer matches
        // keys[key] was re-recorded later and is skipped.
        std::deque<std::pair<uint64_t, std::string>> key_expiry;
    };
    struct Session {
        SessionRecord record;
        uint64_t expires_at_ms = 0;
    };

    Channel& channel_locked(const std::string& name);
    static void prune_locked(Channel& channel, const RetentionPolicy& retention, uint64_t now);
    static void prune_keys_locked(Channel& channel, uint64_t now);
    // At most once a second (store clock): drops expired sessions and idempotency keys of every channel, so ids
    // that are never loaded again and channels never published again do not hold memory forever.
    void sweep_locked(uint64_t now);
    std::string new_epoch_locked();

    Clock now_ms_;
    std::mutex mutex_;
    std::unordered_map<std::string, Channel> channels_;
    std::unordered_map<std::string, Session> sessions_;
    std::set<InMemoryBackplane*> nodes_;
    // Kept apart from channels_ so that registering does not touch (create) a channel and a wipe keeps it.
    std::unordered_map<std::string, std::set<InMemoryBackplane*>> subscribers_;
    uint64_t epoch_counter_ = 0;
    std::string epoch_prefix_;  // random per store, so a wiped or restarted store never reuses an epoch
    uint64_t next_sweep_ms_ = 0;
};

}  // namespace herald
