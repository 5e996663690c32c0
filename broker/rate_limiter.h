// Token buckets for the abuse limits: one per connection for commands (--client-rate/--client-burst) and one per
// client IP for WebSocket handshakes (--connect-rate). Time comes in as milliseconds from the caller's clock.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace herald {

class TokenBucket {
public:
    TokenBucket() = default;  // disabled: allows everything
    // Starts full. `rate_per_s` <= 0 disables the bucket.
    TokenBucket(double rate_per_s, double burst, uint64_t now_ms);

    bool enabled() const { return rate_per_ms_ > 0; }
    // Takes one token if there is one.
    bool try_take(uint64_t now_ms);
    // Milliseconds until one token is available; 0 when one is.
    uint64_t ms_until_available(uint64_t now_ms) const;
    // Refilled to the brim: the bucket remembers nothing a fresh one would not.
    bool full(uint64_t now_ms) const;

private:
    double tokens_at(uint64_t now_ms) const;

    double rate_per_ms_ = 0;
    double burst_ = 0;
    double tokens_ = 0;
    uint64_t updated_ms_ = 0;
};

// Handshakes per client IP: rate N per second, burst 2.5 × N. The table is bounded: full buckets carry no state
// and are pruned every few seconds; when it still holds `max_entries`, new addresses are admitted untracked (an
// attacker with that many addresses is not stopped by a per-IP limit anyway) and counted as such.
class ConnectRateLimiter {
public:
    static constexpr double kBurstFactor = 2.5;
    static constexpr size_t kDefaultMaxEntries = 65'536;
    static constexpr uint64_t kPruneIntervalMs = 10'000;

    explicit ConnectRateLimiter(double rate_per_s, size_t max_entries = kDefaultMaxEntries);

    struct Decision {
        bool allowed = true;
        uint32_t retry_after_s = 0;  // when refused: whole seconds until the next handshake would pass (≥ 1)
        bool untracked = false;      // allowed because the table is full
    };
    Decision admit(std::string_view ip, uint64_t now_ms);

    bool enabled() const { return rate_per_s_ > 0; }
    size_t tracked() const { return buckets_.size(); }
    void prune(uint64_t now_ms);

private:
    double rate_per_s_;
    size_t max_entries_;
    uint64_t last_prune_ms_ = 0;
    std::unordered_map<std::string, TokenBucket> buckets_;
};

}  // namespace herald
