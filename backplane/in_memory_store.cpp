// The embedded backplane's shared state; see in_memory_store.h. One mutex guards everything, and deliveries are
// queued to the nodes under it, so each node receives a channel's messages in serial order.
#include "backplane/in_memory_store.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <limits>
#include <random>

#include <openssl/rand.h>

#include "backplane/in_memory_backplane.h"

namespace herald {

namespace {

constexpr uint64_t kSweepIntervalMs = 1000;

uint64_t steady_now_ms() {
    using namespace std::chrono;
    return static_cast<uint64_t>(duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

uint64_t saturating_add(uint64_t a, uint64_t b) {
    return b > std::numeric_limits<uint64_t>::max() - a ? std::numeric_limits<uint64_t>::max() : a + b;
}

// "Expired once now >= start + ttl", written without the overflow of start + ttl; a clock that went back counts
// as no time passed.
bool expired(uint64_t start_ms, uint64_t ttl_ms, uint64_t now_ms) {
    return now_ms >= start_ms && now_ms - start_ms >= ttl_ms;
}

std::string random_epoch_prefix() {
    std::array<unsigned char, 8> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
        std::random_device device;
        for (auto& b : bytes) b = static_cast<unsigned char>(device());
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char b : bytes) {
        out.push_back(kHex[b >> 4]);
        out.push_back(kHex[b & 0x0f]);
    }
    return out;
}

}  // namespace

InMemoryStore::InMemoryStore(Clock now_ms)
    : now_ms_(now_ms ? std::move(now_ms) : Clock(steady_now_ms)), epoch_prefix_(random_epoch_prefix()) {}

PublishOutcome InMemoryStore::publish(const PublishRequest& request) {
    std::lock_guard lock(mutex_);
    const uint64_t now = now_ms_();
    sweep_locked(now);
    Channel& channel = channel_locked(request.channel);
    prune_keys_locked(channel, now);

    if (request.idempotency_key) {
        auto it = channel.keys.find(*request.idempotency_key);
        if (it != channel.keys.end() && now < it->second.expires_at_ms) {
            return PublishOutcome{it->second.serial, channel.epoch, true};
        }
    }

    const uint64_t serial = ++channel.top;
    channel.history.push_back(Entry{StoredMessage{serial, request.data, request.published_at_us}, now});
    const StoredMessage& stored = channel.history.back().message;

    if (request.idempotency_key) {
        const uint64_t expires_at = saturating_add(now, request.retention.ttl_ms);
        channel.keys[*request.idempotency_key] = KeyRecord{serial, expires_at};
        channel.key_expiry.emplace_back(expires_at, *request.idempotency_key);
    }

    // Under the same lock as the serial assignment: a node sees the channel's deliveries in serial order.
    if (auto subs = subscribers_.find(request.channel); subs != subscribers_.end()) {
        for (InMemoryBackplane* node : subs->second) {
            node->enqueue_delivery(Delivery{request.channel, channel.epoch, stored});
        }
    }

    PublishOutcome outcome{serial, channel.epoch, false};
    // Pruning last: with max_messages 0 the message is delivered but not kept, and `stored` is not used after.
    prune_locked(channel, request.retention, now);
    return outcome;
}

HistorySlice InMemoryStore::history(const HistoryRequest& request) {
    std::lock_guard lock(mutex_);
    const uint64_t now = now_ms_();
    sweep_locked(now);
    Channel& channel = channel_locked(request.channel);
    prune_keys_locked(channel, now);
    prune_locked(channel, request.retention, now);

    HistorySlice slice;
    slice.epoch = channel.epoch;
    slice.top = channel.top;
    slice.oldest = channel.top - channel.history.size() + 1;

    // History holds the contiguous serials oldest..top, so positions are arithmetic.
    const size_t held = channel.history.size();
    size_t begin = 0;
    if (request.since) {
        const uint64_t skipped = *request.since < slice.oldest ? 0 : *request.since - slice.oldest + 1;
        begin = static_cast<size_t>(std::min<uint64_t>(skipped, held));
    }
    size_t end = held;
    if (request.limit) {
        const size_t limit = static_cast<size_t>(std::min<uint64_t>(*request.limit, held));
        if (request.newest && !request.since) {
            begin = held - limit;
        } else {
            end = begin + std::min(limit, held - begin);
        }
    }
    slice.messages.reserve(end - begin);
    for (size_t i = begin; i < end; ++i) slice.messages.push_back(channel.history[i].message);
    return slice;
}

void InMemoryStore::save_session(const std::string& id, SessionRecord record, uint64_t ttl_ms) {
    std::lock_guard lock(mutex_);
    const uint64_t now = now_ms_();
    sweep_locked(now);
    sessions_[id] = Session{std::move(record), saturating_add(now, ttl_ms)};
}

std::optional<SessionRecord> InMemoryStore::load_session(const std::string& id) {
    std::lock_guard lock(mutex_);
    const uint64_t now = now_ms_();
    sweep_locked(now);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return std::nullopt;
    if (now >= it->second.expires_at_ms) {
        sessions_.erase(it);
        return std::nullopt;
    }
    return it->second.record;
}

void InMemoryStore::attach(InMemoryBackplane* node) {
    std::lock_guard lock(mutex_);
    nodes_.insert(node);
}

void InMemoryStore::detach(InMemoryBackplane* node) {
    std::lock_guard lock(mutex_);
    nodes_.erase(node);
    for (auto it = subscribers_.begin(); it != subscribers_.end();) {
        it->second.erase(node);
        it = it->second.empty() ? subscribers_.erase(it) : std::next(it);
    }
}

void InMemoryStore::subscribe(InMemoryBackplane* node, const std::string& channel,
                              const std::function<void()>& on_registered) {
    std::lock_guard lock(mutex_);
    if (nodes_.count(node)) subscribers_[channel].insert(node);
    if (on_registered) on_registered();
}

void InMemoryStore::unsubscribe(InMemoryBackplane* node, const std::string& channel) {
    std::lock_guard lock(mutex_);
    auto it = subscribers_.find(channel);
    if (it == subscribers_.end()) return;
    it->second.erase(node);
    if (it->second.empty()) subscribers_.erase(it);
}

void InMemoryStore::wipe() {
    std::lock_guard lock(mutex_);
    channels_.clear();
    sessions_.clear();
}

InMemoryStore::Stats InMemoryStore::stats() {
    std::lock_guard lock(mutex_);
    const uint64_t now = now_ms_();
    next_sweep_ms_ = 0;  // force a sweep: the numbers should not count what has already expired
    sweep_locked(now);
    Stats stats;
    stats.channels = channels_.size();
    stats.sessions = sessions_.size();
    for (const auto& [name, channel] : channels_) {
        stats.messages += channel.history.size();
        // Keys recorded with a shorter ttl than an older one may still wait in key_expiry; count only live ones.
        const auto live = [now](const auto& key) { return now < key.second.expires_at_ms; };
        stats.idempotency_keys += static_cast<size_t>(std::count_if(channel.keys.begin(), channel.keys.end(), live));
    }
    return stats;
}

InMemoryStore::Channel& InMemoryStore::channel_locked(const std::string& name) {
    auto [it, created] = channels_.try_emplace(name);
    if (created) it->second.epoch = new_epoch_locked();
    return it->second;
}

void InMemoryStore::prune_locked(Channel& channel, const RetentionPolicy& retention, uint64_t now) {
    while (channel.history.size() > retention.max_messages) channel.history.pop_front();
    while (!channel.history.empty() && expired(channel.history.front().stored_at_ms, retention.ttl_ms, now)) {
        channel.history.pop_front();
    }
}

void InMemoryStore::prune_keys_locked(Channel& channel, uint64_t now) {
    while (!channel.key_expiry.empty() && now >= channel.key_expiry.front().first) {
        const auto& [expires_at, key] = channel.key_expiry.front();
        auto it = channel.keys.find(key);
        if (it != channel.keys.end() && it->second.expires_at_ms == expires_at) channel.keys.erase(it);
        channel.key_expiry.pop_front();
    }
}

void InMemoryStore::sweep_locked(uint64_t now) {
    if (now < next_sweep_ms_) return;
    next_sweep_ms_ = saturating_add(now, kSweepIntervalMs);
    std::erase_if(sessions_, [now](const auto& item) { return now >= item.second.expires_at_ms; });
    for (auto& [name, channel] : channels_) prune_keys_locked(channel, now);
}

std::string InMemoryStore::new_epoch_locked() {
    return epoch_prefix_ + "-" + std::to_string(++epoch_counter_);
}

}  // namespace herald
