// Token buckets refilled lazily from the caller's clock: no timer per bucket, nothing done while a client is idle.
#include "broker/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace herald {

TokenBucket::TokenBucket(double rate_per_s, double burst, uint64_t now_ms)
    : rate_per_ms_(rate_per_s > 0 ? rate_per_s / 1000.0 : 0),
      burst_(std::max(burst, 0.0)),
      tokens_(burst_),
      updated_ms_(now_ms) {}

double TokenBucket::tokens_at(uint64_t now_ms) const {
    const uint64_t elapsed = now_ms > updated_ms_ ? now_ms - updated_ms_ : 0;
    return std::min(burst_, tokens_ + static_cast<double>(elapsed) * rate_per_ms_);
}

bool TokenBucket::try_take(uint64_t now_ms) {
    if (!enabled()) return true;
    tokens_ = tokens_at(now_ms);
    updated_ms_ = std::max(updated_ms_, now_ms);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
}

uint64_t TokenBucket::ms_until_available(uint64_t now_ms) const {
    if (!enabled()) return 0;
    const double tokens = tokens_at(now_ms);
    if (tokens >= 1.0) return 0;
    if (burst_ < 1.0) return UINT64_MAX;  // can never hold a whole token
    return static_cast<uint64_t>(std::ceil((1.0 - tokens) / rate_per_ms_));
}

bool TokenBucket::full(uint64_t now_ms) const { return !enabled() || tokens_at(now_ms) >= burst_; }

ConnectRateLimiter::ConnectRateLimiter(double rate_per_s, size_t max_entries)
    : rate_per_s_(rate_per_s > 0 ? rate_per_s : 0), max_entries_(max_entries) {}

void ConnectRateLimiter::prune(uint64_t now_ms) {
    last_prune_ms_ = now_ms;
    std::erase_if(buckets_, [now_ms](const auto& entry) { return entry.second.full(now_ms); });
}

ConnectRateLimiter::Decision ConnectRateLimiter::admit(std::string_view ip, uint64_t now_ms) {
    if (!enabled()) return {};
    if (now_ms - last_prune_ms_ >= kPruneIntervalMs) prune(now_ms);
    auto it = buckets_.find(std::string(ip));
    if (it == buckets_.end()) {
        if (buckets_.size() >= max_entries_) {
            prune(now_ms);
            if (buckets_.size() >= max_entries_) return Decision{true, 0, true};
        }
        it = buckets_.emplace(std::string(ip), TokenBucket(rate_per_s_, rate_per_s_ * kBurstFactor, now_ms)).first;
    }
    if (it->second.try_take(now_ms)) return {};
    const uint64_t wait_ms = it->second.ms_until_available(now_ms);
    constexpr uint64_t kMaxRetryAfterS = 3600;
    const uint64_t seconds =
        wait_ms >= kMaxRetryAfterS * 1000 ? kMaxRetryAfterS : std::max<uint64_t>((wait_ms + 999) / 1000, 1);
    return Decision{false, static_cast<uint32_t>(seconds), false};
}

}  // namespace herald
