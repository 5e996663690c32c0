// InMemoryStore on its own, without a loop or a node: epochs, pruning edges, idempotency keys and sessions.
#include "backplane/in_memory_store.h"

#include <cctype>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace herald {
namespace {

using Serials = std::vector<uint64_t>;

class InMemoryStoreTest : public ::testing::Test {
protected:
    uint64_t now_ = 1'000;
    InMemoryStore store_{[this] { return now_; }};

    PublishOutcome publish(const std::string& channel, RetentionPolicy retention = {},
                           std::optional<std::string> key = std::nullopt, std::string data = "1") {
        return store_.publish(PublishRequest{channel, std::move(data), std::move(key), retention, 0});
    }
    HistorySlice history(const std::string& channel, std::optional<uint64_t> since = std::nullopt,
                         std::optional<uint64_t> limit = std::nullopt, bool newest = false,
                         RetentionPolicy retention = {}) {
        return store_.history(HistoryRequest{channel, since, limit, newest, retention});
    }
    static Serials serials(const HistorySlice& slice) {
        Serials out;
        for (const auto& m : slice.messages) out.push_back(m.serial);
        return out;
    }
};

bool is_epoch(const std::string& epoch) {
    if (epoch.size() < 18 || epoch[16] != '-') return false;
    for (size_t i = 0; i < 16; ++i) {
        const auto c = static_cast<unsigned char>(epoch[i]);
        if (!std::isxdigit(c) || std::isupper(c)) return false;
    }
    for (size_t i = 17; i < epoch.size(); ++i) {
        if (!std::isdigit(static_cast<unsigned char>(epoch[i]))) return false;
    }
    return true;
}

TEST_F(InMemoryStoreTest, EpochIsRandomPrefixDashCounter) {
    const std::string a = publish("a").epoch;
    const std::string b = history("b").epoch;
    EXPECT_TRUE(is_epoch(a)) << a;
    EXPECT_TRUE(is_epoch(b)) << b;
    EXPECT_NE(a, b) << "each channel gets its own epoch";
    EXPECT_EQ(a.substr(0, 17), b.substr(0, 17)) << "one prefix per store";
}

TEST(InMemoryStoreEpochs, NeverReusedAcrossStoresOrWipes) {
    std::set<std::string> prefixes;
    std::set<std::string> epochs;
    for (int i = 0; i < 20; ++i) {
        InMemoryStore store;
        const std::string epoch = store.publish(PublishRequest{"c", "1", std::nullopt, {}, 0}).epoch;
        EXPECT_TRUE(epochs.insert(epoch).second) << "epoch reused: " << epoch;
        prefixes.insert(epoch.substr(0, 16));
        store.wipe();
        const std::string after = store.publish(PublishRequest{"c", "1", std::nullopt, {}, 0}).epoch;
        EXPECT_TRUE(epochs.insert(after).second) << "epoch reused after wipe: " << after;
    }
    EXPECT_EQ(prefixes.size(), 20u) << "every store draws its own random prefix";
}

TEST_F(InMemoryStoreTest, HistoryOnAnUntouchedChannelThenPublishKeepsTheEpoch) {
    auto h = history("c");
    EXPECT_EQ(h.top, 0u);
    EXPECT_EQ(h.oldest, 1u);
    EXPECT_EQ(publish("c").epoch, h.epoch);
    EXPECT_EQ(store_.stats().channels, 1u);
}

TEST_F(InMemoryStoreTest, DataAndPublisherTimestampAreKept) {
    store_.publish(PublishRequest{"c", "{\"a\":[1,2]}", std::nullopt, {}, 123456789});
    auto h = history("c");
    ASSERT_EQ(h.messages.size(), 1u);
    EXPECT_EQ(h.messages[0].data, "{\"a\":[1,2]}");
    EXPECT_EQ(h.messages[0].published_at_us, 123456789u);
}

TEST_F(InMemoryStoreTest, MaxMessagesZeroKeepsNothingButCounts) {
    const RetentionPolicy none{0, 60'000};
    EXPECT_EQ(publish("c", none).serial, 1u);
    EXPECT_EQ(publish("c", none).serial, 2u);
    auto h = history("c", std::nullopt, std::nullopt, false, none);
    EXPECT_EQ(h.top, 2u);
    EXPECT_EQ(h.oldest, 3u);
    EXPECT_EQ(serials(h), Serials{});
}

TEST_F(InMemoryStoreTest, CountPruningKeepsTheNewest) {
    const RetentionPolicy two{2, 60'000};
    for (int i = 0; i < 5; ++i) publish("c", two);
    auto h = history("c", std::nullopt, std::nullopt, false, two);
    EXPECT_EQ(h.oldest, 4u);
    EXPECT_EQ(serials(h), (Serials{4, 5}));
    EXPECT_EQ(store_.stats().messages, 2u);
}

TEST_F(InMemoryStoreTest, HistoryPrunesByTheRequestsRetention) {
    for (int i = 0; i < 5; ++i) publish("c");
    auto h = history("c", std::nullopt, std::nullopt, false, RetentionPolicy{3, 60'000});
    EXPECT_EQ(serials(h), (Serials{3, 4, 5}));
    // Pruning is for good: a wider request later does not bring them back.
    EXPECT_EQ(serials(history("c")), (Serials{3, 4, 5}));
}

TEST_F(InMemoryStoreTest, AgeExpiryIsInclusiveOfTheTtl) {
    const RetentionPolicy ttl{100, 100};
    publish("c", ttl);  // stored at 1000
    now_ = 1'099;
    EXPECT_EQ(serials(history("c", std::nullopt, std::nullopt, false, ttl)), Serials{1});
    now_ = 1'100;
    auto h = history("c", std::nullopt, std::nullopt, false, ttl);
    EXPECT_EQ(serials(h), Serials{});
    EXPECT_EQ(h.oldest, 2u);
    EXPECT_EQ(h.top, 1u);
}

TEST_F(InMemoryStoreTest, TtlZeroKeepsNothing) {
    const RetentionPolicy zero{100, 0};
    publish("c", zero, "k");
    EXPECT_EQ(serials(history("c", std::nullopt, std::nullopt, false, zero)), Serials{});
    EXPECT_FALSE(publish("c", zero, "k").duplicate) << "a key with ttl 0 expires at once";
}

TEST_F(InMemoryStoreTest, AgePruningStopsAtTheFirstYoungMessage) {
    const RetentionPolicy ttl{100, 100};
    publish("c", ttl);  // 1000
    now_ = 1'050;
    publish("c", ttl);  // 1050
    publish("c", ttl);  // 1050
    now_ = 1'120;
    auto h = history("c", std::nullopt, std::nullopt, false, ttl);
    EXPECT_EQ(h.oldest, 2u);
    EXPECT_EQ(serials(h), (Serials{2, 3}));
}

TEST_F(InMemoryStoreTest, SinceAndLimitEdges) {
    for (int i = 0; i < 5; ++i) publish("c", RetentionPolicy{3, 60'000});  // holds 3..5
    EXPECT_EQ(serials(history("c", 0)), (Serials{3, 4, 5})) << "since below oldest: from the oldest";
    EXPECT_EQ(serials(history("c", 2)), (Serials{3, 4, 5}));
    EXPECT_EQ(serials(history("c", 3)), (Serials{4, 5}));
    EXPECT_EQ(serials(history("c", 5)), Serials{});
    EXPECT_EQ(serials(history("c", 99)), Serials{});
    EXPECT_EQ(serials(history("c", 0, 1)), Serials{3});
    EXPECT_EQ(serials(history("c", 4, 10)), Serials{5});
    EXPECT_EQ(serials(history("c", std::nullopt, 0)), Serials{});
    EXPECT_EQ(serials(history("c", std::nullopt, 2, true)), (Serials{4, 5}));
    EXPECT_EQ(serials(history("c", std::nullopt, 0, true)), Serials{});
    EXPECT_EQ(serials(history("c", 3, 1, true)), Serials{4}) << "newest is ignored with since";
}

TEST_F(InMemoryStoreTest, KeyOfAPrunedMessageStillDeduplicates) {
    const RetentionPolicy one{1, 60'000};
    EXPECT_EQ(publish("c", one, "k").serial, 1u);
    publish("c", one);  // pushes serial 1 out of history
    auto dup = publish("c", one, "k");
    EXPECT_TRUE(dup.duplicate);
    EXPECT_EQ(dup.serial, 1u);
}

TEST_F(InMemoryStoreTest, KeyExpiryBoundaryAndReRecording) {
    const RetentionPolicy ttl{100, 100};
    publish("c", ttl, "k");  // expires at 1100
    now_ = 1'099;
    EXPECT_TRUE(publish("c", ttl, "k").duplicate);
    now_ = 1'100;
    auto fresh = publish("c", ttl, "k");  // serial 2, expires at 1200
    EXPECT_FALSE(fresh.duplicate);
    EXPECT_EQ(fresh.serial, 2u);
    now_ = 1'150;
    auto dup = publish("c", ttl, "k");
    EXPECT_TRUE(dup.duplicate);
    EXPECT_EQ(dup.serial, 2u);
}

TEST_F(InMemoryStoreTest, ExpiredKeysArePrunedLazily) {
    const RetentionPolicy ttl{100, 100};
    for (int i = 0; i < 10; ++i) publish("c", ttl, "k" + std::to_string(i));
    publish("d", ttl, "other");
    EXPECT_EQ(store_.stats().idempotency_keys, 11u);
    now_ = 1'200;
    EXPECT_EQ(store_.stats().idempotency_keys, 0u);
    // Keys with different ttls in one channel: the short one expires even behind a long one.
    publish("e", RetentionPolicy{100, 1'000}, "long");
    publish("e", RetentionPolicy{100, 10}, "short");
    now_ = 1'210;
    EXPECT_FALSE(publish("e", RetentionPolicy{100, 10}, "short").duplicate);
    EXPECT_TRUE(publish("e", RetentionPolicy{100, 1'000}, "long").duplicate);
}

TEST_F(InMemoryStoreTest, SessionsExpireAndOverwriteExtends) {
    store_.save_session("s", SessionRecord{"a", {{"c", StreamPosition{3, "e"}}}}, 100);  // until 1100
    now_ = 1'099;
    auto loaded = store_.load_session("s");
    ASSERT_TRUE(loaded.has_value());
    EXPECT_EQ(loaded->subject, "a");
    EXPECT_EQ(loaded->positions.at("c"), (StreamPosition{3, "e"}));
    store_.save_session("s", SessionRecord{"b", {}}, 100);  // until 1199
    now_ = 1'150;
    ASSERT_TRUE(store_.load_session("s").has_value());
    EXPECT_EQ(store_.load_session("s")->subject, "b");
    now_ = 1'199;
    EXPECT_FALSE(store_.load_session("s").has_value());
    EXPECT_EQ(store_.stats().sessions, 0u);
    store_.save_session("s", SessionRecord{"c", {}}, 100);
    EXPECT_EQ(store_.load_session("s")->subject, "c") << "an expired id can be saved again";
}

TEST_F(InMemoryStoreTest, SessionsNeverLoadedAreSweptAway) {
    for (int i = 0; i < 10; ++i) store_.save_session("s" + std::to_string(i), SessionRecord{}, 100);
    EXPECT_EQ(store_.stats().sessions, 10u);
    now_ = 5'000;
    EXPECT_EQ(store_.stats().sessions, 0u);
}

TEST_F(InMemoryStoreTest, WipeDropsChannelsAndSessions) {
    const std::string epoch = publish("c", {}, "k").epoch;
    publish("c");
    store_.save_session("s", SessionRecord{}, 60'000);
    store_.wipe();
    auto stats = store_.stats();
    EXPECT_EQ(stats.channels, 0u);
    EXPECT_EQ(stats.sessions, 0u);
    EXPECT_FALSE(store_.load_session("s").has_value());
    auto after = publish("c", {}, "k");
    EXPECT_EQ(after.serial, 1u);
    EXPECT_FALSE(after.duplicate) << "keys are wiped with their channel";
    EXPECT_NE(after.epoch, epoch);
}

TEST_F(InMemoryStoreTest, ClockGoingBackwardsExpiresNothing) {
    const RetentionPolicy ttl{100, 100};
    publish("c", ttl, "k");
    now_ = 500;
    EXPECT_EQ(serials(history("c", std::nullopt, std::nullopt, false, ttl)), Serials{1});
    EXPECT_TRUE(publish("c", ttl, "k").duplicate);
}

TEST(InMemoryStoreDefaultClock, WorksWithoutAnInjectedClock) {
    InMemoryStore store;
    store.save_session("s", SessionRecord{}, 60'000);
    EXPECT_TRUE(store.load_session("s").has_value());
    EXPECT_EQ(store.publish(PublishRequest{"c", "1", std::nullopt, {}, 0}).serial, 1u);
}

}  // namespace
}  // namespace herald
