// The embedded backplane's shared state: channels (epoch, serial counter, bounded history, idempotency keys) and
// sessions. Thread-safe, so several event loops in one process can each attach an InMemoryBackplane and behave
// as nodes of one cluster.
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

    // Drops every channel and session, as a Redis FLUSHALL would; channels get new epochs. For tests.
    void wipe();

private:
    struct Channel {
        std::string epoch;
        uint64_t top = 0;
        std::deque<StoredMessage> history;
        std::map<std::string, std::pair<uint64_t, uint64_t>> keys;  // key → (serial, expires_at_ms)
        std::set<InMemoryBackplane*> subscribers;
    };
    struct Session {
        SessionRecord record;
        uint64_t expires_at_ms = 0;
    };

    Channel& channel_locked(const std::string& name);
    void prune_locked(Channel& channel, const RetentionPolicy& retention, uint64_t now);
    std::string new_epoch_locked();

    Clock now_ms_;
    std::mutex mutex_;
    std::unordered_map<std::string, Channel> channels_;
    std::unordered_map<std::string, Session> sessions_;
    std::set<InMemoryBackplane*> nodes_;
    uint64_t epoch_counter_ = 0;
    std::string epoch_prefix_;  // random per store, so a wiped or restarted store never reuses an epoch
};

}  // namespace herald
