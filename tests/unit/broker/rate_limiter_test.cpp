// Tests for broker/rate_limiter.cpp: token bucket arithmetic on a hand-driven clock, and the per-IP table's
// bounds (pruning, the untracked fallback, Retry-After).
#include "broker/rate_limiter.h"

#include <gtest/gtest.h>

#include <string>

namespace herald {
namespace {

TEST(TokenBucket, DefaultIsDisabledAndAllowsEverything) {
    TokenBucket bucket;
    EXPECT_FALSE(bucket.enabled());
    for (int i = 0; i < 10'000; ++i) ASSERT_TRUE(bucket.try_take(0)) << "take " << i;
    EXPECT_EQ(bucket.ms_until_available(0), 0u);
}

TEST(TokenBucket, ZeroRateIsOff) {
    TokenBucket bucket(0, 100, 0);
    EXPECT_FALSE(bucket.enabled());
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(bucket.try_take(0));
}

TEST(TokenBucket, BurstThenRate) {
    TokenBucket bucket(50, 100, 1000);  // 50/s: one token per 20 ms
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(bucket.try_take(1000)) << "burst take " << i;
    EXPECT_FALSE(bucket.try_take(1000)) << "the 101st command at the same instant";
    EXPECT_EQ(bucket.ms_until_available(1000), 20u);
    EXPECT_FALSE(bucket.try_take(1019));
    EXPECT_TRUE(bucket.try_take(1020)) << "one token after 20 ms";
    EXPECT_FALSE(bucket.try_take(1020));
    // One second later: 50 more, not more.
    int taken = 0;
    while (bucket.try_take(2020)) ++taken;
    EXPECT_EQ(taken, 50);
}

TEST(TokenBucket, RefillIsCappedAtBurst) {
    TokenBucket bucket(10, 5, 0);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(bucket.try_take(0));
    EXPECT_FALSE(bucket.full(0));
    EXPECT_TRUE(bucket.full(10'000'000)) << "idle for hours";
    int taken = 0;
    while (bucket.try_take(10'000'000)) ++taken;
    EXPECT_EQ(taken, 5) << "an idle bucket holds at most its burst";
}

TEST(TokenBucket, ClockGoingBackwardsDoesNotMintTokens) {
    TokenBucket bucket(1, 1, 5000);
    ASSERT_TRUE(bucket.try_take(5000));
    EXPECT_FALSE(bucket.try_take(4000));
    EXPECT_FALSE(bucket.try_take(5500));
    EXPECT_TRUE(bucket.try_take(6000));
}

TEST(ConnectRateLimiter, OffByDefault) {
    ConnectRateLimiter limiter(0);
    EXPECT_FALSE(limiter.enabled());
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.admit("192.0.2.1", 0).allowed);
    EXPECT_EQ(limiter.tracked(), 0u);
}

TEST(ConnectRateLimiter, BurstIsTwoAndAHalfTimesTheRateAndRefusalsSayWhenToRetry) {
    ConnectRateLimiter limiter(2);  // burst 5
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(limiter.admit("192.0.2.1", 1000).allowed) << "handshake " << i;
    auto refused = limiter.admit("192.0.2.1", 1000);
    EXPECT_FALSE(refused.allowed);
    EXPECT_EQ(refused.retry_after_s, 1u) << "one token every 500 ms rounds up to 1 s";
    EXPECT_TRUE(limiter.admit("192.0.2.2", 1000).allowed) << "another address has its own bucket";
    EXPECT_TRUE(limiter.admit("192.0.2.1", 1500).allowed) << "refilled after 500 ms";
}

TEST(ConnectRateLimiter, RetryAfterCoversSlowRates) {
    ConnectRateLimiter limiter(0.4);  // burst 1, one token per 2.5 s
    ASSERT_TRUE(limiter.admit("a", 0).allowed);
    auto refused = limiter.admit("a", 0);
    EXPECT_FALSE(refused.allowed);
    EXPECT_EQ(refused.retry_after_s, 3u);
}

TEST(ConnectRateLimiter, IdleEntriesArePrunedPeriodically) {
    ConnectRateLimiter limiter(10);
    for (int i = 0; i < 100; ++i) limiter.admit("10.0.0." + std::to_string(i), 0);
    EXPECT_EQ(limiter.tracked(), 100u);
    // Long after, the next admission prunes every full bucket before adding its own.
    limiter.admit("10.1.0.1", ConnectRateLimiter::kPruneIntervalMs + 5000);
    EXPECT_EQ(limiter.tracked(), 1u);
}

TEST(ConnectRateLimiter, FullTableAdmitsNewAddressesUntracked) {
    ConnectRateLimiter limiter(1, 3);  // burst 2.5
    for (const char* ip : {"a", "b", "c"}) ASSERT_TRUE(limiter.admit(ip, 0).allowed);
    auto extra = limiter.admit("d", 1);
    EXPECT_TRUE(extra.allowed);
    EXPECT_TRUE(extra.untracked) << "no room: the table is not allowed to grow";
    EXPECT_EQ(limiter.tracked(), 3u);
    // Known addresses are still limited.
    ASSERT_TRUE(limiter.admit("a", 1).allowed);
    EXPECT_FALSE(limiter.admit("a", 1).allowed);
    // Once the others refill they are pruned to make room.
    auto later = limiter.admit("e", 5000);
    EXPECT_TRUE(later.allowed);
    EXPECT_FALSE(later.untracked);
}

}  // namespace
}  // namespace herald
