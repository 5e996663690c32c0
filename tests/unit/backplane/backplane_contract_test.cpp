// The backplane contract (backplane/backplane.h), run against every implementation through BackplaneFactory; the
// in-memory instantiation lives here, plus the in-memory-only case of two loops on two threads sharing a store.
#include <algorithm>
#include <atomic>
#include <latch>
#include <set>
#include <thread>

#include "backplane/in_memory_backplane.h"
#include "backplane/in_memory_store.h"
#include "tests/unit/backplane/backplane_contract.h"

namespace herald::testing {
namespace {

using Serials = std::vector<uint64_t>;

// ---------------------------------------------------------------------------------------------------------------
// Serials and publish

TEST_P(BackplaneContractTest, SerialsStartAtOneWithoutHoles) {
    for (uint64_t i = 1; i <= 10; ++i) {
        auto r = publish(0, "news", "{\"n\":" + std::to_string(i) + "}");
        ASSERT_TRUE(r.ok()) << r.error().detail;
        EXPECT_EQ(r->serial, i);
        EXPECT_FALSE(r->duplicate);
        EXPECT_FALSE(r->epoch.empty());
    }
    // The other node continues the same counter.
    auto r = publish(1, "news", "11");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->serial, 11u);
    // Channels count independently.
    auto other = publish(1, "sports", "1");
    ASSERT_TRUE(other.ok());
    EXPECT_EQ(other->serial, 1u);
}

TEST_P(BackplaneContractTest, CallbacksNeverRunInsideTheCall) {
    int calls = 0;
    node(0).subscribe("c", [&](BackplaneResult<Unit> r) { EXPECT_TRUE(r.ok()); ++calls; });
    EXPECT_EQ(calls, 0) << "subscribe ready ran inside subscribe()";
    node(0).publish(PublishRequest{"c", "1", std::nullopt, kKeepAll, 0}, [&](auto r) { EXPECT_TRUE(r.ok()); ++calls; });
    EXPECT_EQ(calls, 0) << "publish callback ran inside publish()";
    EXPECT_EQ(listener(0).deliveries.size(), 0u) << "delivery ran inside publish()";
    node(0).history(HistoryRequest{"c", std::nullopt, std::nullopt, false, kKeepAll}, [&](auto r) {
        EXPECT_TRUE(r.ok());
        ++calls;
    });
    EXPECT_EQ(calls, 0) << "history callback ran inside history()";
    node(0).save_session("s", SessionRecord{}, 60'000, [&](auto r) { EXPECT_TRUE(r.ok()); ++calls; });
    EXPECT_EQ(calls, 0) << "save_session callback ran inside save_session()";
    node(0).load_session("s", [&](auto r) { EXPECT_TRUE(r.ok()); ++calls; });
    EXPECT_EQ(calls, 0) << "load_session callback ran inside load_session()";
    EXPECT_TRUE(harness().run_until([&] { return calls == 5; }));
}

// ---------------------------------------------------------------------------------------------------------------
// History

TEST_P(BackplaneContractTest, HistoryOfAnUntouchedChannelCreatesItsEpoch) {
    auto h = history(0, "fresh", std::nullopt, std::nullopt);
    ASSERT_TRUE(h.ok());
    EXPECT_FALSE(h->epoch.empty());
    EXPECT_EQ(h->top, 0u);
    EXPECT_EQ(h->oldest, 1u);
    EXPECT_EQ(serials_of(*h), Serials{});

    auto p = publish(1, "fresh", "1");
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->serial, 1u);
    EXPECT_EQ(p->epoch, h->epoch) << "the epoch created by the history read must be kept by the first publish";
}

TEST_P(BackplaneContractTest, HistorySinceAndLimit) {
    for (int i = 1; i <= 10; ++i) {
        ASSERT_TRUE(publish(0, "c", "\"m" + std::to_string(i) + "\"", {}, kKeepAll, 1000 + i).ok());
    }

    auto all = history(1, "c", std::nullopt, std::nullopt);
    ASSERT_TRUE(all.ok());
    EXPECT_EQ(all->top, 10u);
    EXPECT_EQ(all->oldest, 1u);
    EXPECT_EQ(serials_of(*all), serial_range(1, 10));
    ASSERT_EQ(all->messages.size(), 10u);
    EXPECT_EQ(all->messages[0].data, "\"m1\"");
    EXPECT_EQ(all->messages[0].published_at_us, 1001u);
    EXPECT_EQ(all->messages[9].data, "\"m10\"");

    EXPECT_EQ(serials_of(*history(0, "c", 3, std::nullopt)), serial_range(4, 10));
    EXPECT_EQ(serials_of(*history(0, "c", 3, 2)), serial_range(4, 5));
    EXPECT_EQ(serials_of(*history(0, "c", 0, std::nullopt)), serial_range(1, 10));
    EXPECT_EQ(serials_of(*history(0, "c", 10, std::nullopt)), Serials{});
    auto beyond = history(0, "c", 15, 5);
    ASSERT_TRUE(beyond.ok());
    EXPECT_EQ(serials_of(*beyond), Serials{});
    EXPECT_EQ(beyond->top, 10u);
    // Without since and without newest: the oldest `limit`.
    EXPECT_EQ(serials_of(*history(0, "c", std::nullopt, 3)), serial_range(1, 3));
}

TEST_P(BackplaneContractTest, HistoryNewest) {
    for (int i = 1; i <= 10; ++i) ASSERT_TRUE(publish(0, "c", std::to_string(i)).ok());
    EXPECT_EQ(serials_of(*history(1, "c", std::nullopt, 3, true)), serial_range(8, 10)) << "oldest first";
    EXPECT_EQ(serials_of(*history(1, "c", std::nullopt, 50, true)), serial_range(1, 10));
    EXPECT_EQ(serials_of(*history(1, "c", std::nullopt, std::nullopt, true)), serial_range(1, 10));
    EXPECT_EQ(serials_of(*history(1, "c", 2, 3, true)), serial_range(3, 5)) << "since wins over newest";
}

TEST_P(BackplaneContractTest, HistoryLimitZeroReturnsOnlyThePosition) {
    for (int i = 1; i <= 4; ++i) ASSERT_TRUE(publish(0, "c", std::to_string(i)).ok());
    for (bool newest : {false, true}) {
        auto h = history(1, "c", std::nullopt, 0, newest);
        ASSERT_TRUE(h.ok());
        EXPECT_EQ(serials_of(*h), Serials{});
        EXPECT_EQ(h->top, 4u);
        EXPECT_EQ(h->oldest, 1u);
        EXPECT_FALSE(h->epoch.empty());
    }
}

TEST_P(BackplaneContractTest, RetentionByCount) {
    const RetentionPolicy three{3, 600'000};
    for (int i = 1; i <= 5; ++i) ASSERT_TRUE(publish(0, "c", std::to_string(i), {}, three).ok());
    auto h = history(1, "c", std::nullopt, std::nullopt, false, three);
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->top, 5u);
    EXPECT_EQ(h->oldest, 3u);
    EXPECT_EQ(serials_of(*h), serial_range(3, 5));
    // A reader at serial 1 sees that 2 is gone: oldest > since + 1.
    auto since = history(1, "c", 1, std::nullopt, false, three);
    ASSERT_TRUE(since.ok());
    EXPECT_EQ(since->oldest, 3u);
    EXPECT_EQ(serials_of(*since), serial_range(3, 5));
}

TEST_P(BackplaneContractTest, RetentionByAge) {
    const RetentionPolicy short_ttl{1000, 300};
    ASSERT_TRUE(publish(0, "c", "1", {}, short_ttl).ok());
    ASSERT_TRUE(publish(0, "c", "2", {}, short_ttl).ok());
    harness().advance_time_ms(200);
    ASSERT_TRUE(publish(0, "c", "3", {}, short_ttl).ok());
    harness().advance_time_ms(150);  // 1 and 2 are 350 ms old, 3 is 150 ms old

    auto h = history(1, "c", std::nullopt, std::nullopt, false, short_ttl);
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->top, 3u);
    EXPECT_EQ(h->oldest, 3u);
    EXPECT_EQ(serials_of(*h), serial_range(3, 3));

    harness().advance_time_ms(200);  // 3 is 350 ms old
    auto empty = history(1, "c", std::nullopt, std::nullopt, false, short_ttl);
    ASSERT_TRUE(empty.ok());
    EXPECT_EQ(empty->top, 3u);
    EXPECT_EQ(empty->oldest, 4u) << "empty history: oldest = top + 1";
    EXPECT_EQ(serials_of(*empty), Serials{});
    EXPECT_EQ(empty->epoch, h->epoch) << "expired messages are not a lost lineage";

    auto next = publish(0, "c", "4", {}, short_ttl);
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(next->serial, 4u);
}

// ---------------------------------------------------------------------------------------------------------------
// Delivery

TEST_P(BackplaneContractTest, DeliveredOnceInSerialOrderToTheSubscribedNode) {
    ASSERT_TRUE(subscribe(0, "c").ok());
    std::string epoch;
    for (int i = 1; i <= 20; ++i) {
        node(0).publish(PublishRequest{"c", "{\"i\":" + std::to_string(i) + "}", std::nullopt, kKeepAll,
                                       static_cast<uint64_t>(5000 + i)},
                        [&](BackplaneResult<PublishOutcome> r) {
                            ASSERT_TRUE(r.ok());
                            epoch = r->epoch;
                        });
    }
    ASSERT_TRUE(await_deliveries(0, "c", 20));
    harness().run_for(50);  // nothing more may arrive
    ASSERT_EQ(listener(0).serials("c"), serial_range(1, 20));
    for (const auto& d : listener(0).deliveries) {
        EXPECT_EQ(d.epoch, epoch);
        EXPECT_EQ(d.message.data, "{\"i\":" + std::to_string(d.message.serial) + "}");
        EXPECT_EQ(d.message.published_at_us, 5000 + d.message.serial);
    }
    EXPECT_EQ(listener(1).deliveries.size(), 0u) << "node B did not subscribe";
}

TEST_P(BackplaneContractTest, PublishedOnOneNodeDeliveredOnTheOther) {
    ASSERT_TRUE(subscribe(1, "c").ok());
    auto p = publish(0, "c", "\"hello\"");
    ASSERT_TRUE(p.ok());
    ASSERT_TRUE(await_deliveries(1, "c", 1));
    harness().run_for(30);
    ASSERT_EQ(listener(1).deliveries.size(), 1u);
    EXPECT_EQ(listener(1).deliveries[0].channel, "c");
    EXPECT_EQ(listener(1).deliveries[0].epoch, p->epoch);
    EXPECT_EQ(listener(1).deliveries[0].message.serial, 1u);
    EXPECT_EQ(listener(1).deliveries[0].message.data, "\"hello\"");
    EXPECT_EQ(listener(0).serials("c"), Serials{}) << "the publishing node did not subscribe";
}

TEST_P(BackplaneContractTest, DeliveredToBothSubscribedNodes) {
    ASSERT_TRUE(subscribe(0, "c").ok());
    ASSERT_TRUE(subscribe(1, "c").ok());
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(publish(i % 2, "c", std::to_string(i)).ok());
    ASSERT_TRUE(await_deliveries(0, "c", 10));
    ASSERT_TRUE(await_deliveries(1, "c", 10));
    harness().run_for(30);
    EXPECT_EQ(listener(0).serials("c"), serial_range(1, 10));
    EXPECT_EQ(listener(1).serials("c"), serial_range(1, 10));
}

TEST_P(BackplaneContractTest, OnlyTheSubscribedChannelIsDelivered) {
    ASSERT_TRUE(subscribe(0, "a").ok());
    ASSERT_TRUE(publish(1, "b", "1").ok());
    ASSERT_TRUE(publish(1, "a", "1").ok());
    ASSERT_TRUE(await_deliveries(0, "a", 1));
    harness().run_for(30);
    EXPECT_EQ(listener(0).events, std::vector<std::string>{"delivery:a:1"});
}

TEST_P(BackplaneContractTest, InterleavedPublishesFromBothNodesKeepOneOrder) {
    ASSERT_TRUE(subscribe(0, "c").ok());
    ASSERT_TRUE(subscribe(1, "c").ok());
    std::vector<uint64_t> assigned;
    constexpr int kEach = 50;
    for (int i = 0; i < kEach; ++i) {
        for (size_t n = 0; n < 2; ++n) {
            node(n).publish(PublishRequest{"c", std::to_string(i), std::nullopt, kKeepAll, 0},
                            [&](BackplaneResult<PublishOutcome> r) {
                                ASSERT_TRUE(r.ok());
                                assigned.push_back(r->serial);
                            });
        }
    }
    ASSERT_TRUE(harness().run_until([&] { return assigned.size() == 2 * kEach; }));
    ASSERT_TRUE(await_deliveries(0, "c", 2 * kEach));
    ASSERT_TRUE(await_deliveries(1, "c", 2 * kEach));
    std::sort(assigned.begin(), assigned.end());
    EXPECT_EQ(assigned, serial_range(1, 2 * kEach)) << "every publish got its own serial";
    EXPECT_EQ(listener(0).serials("c"), serial_range(1, 2 * kEach));
    EXPECT_EQ(listener(1).serials("c"), serial_range(1, 2 * kEach));
}

TEST_P(BackplaneContractTest, NothingDeliveredAfterUnsubscribe) {
    ASSERT_TRUE(subscribe(0, "c").ok());
    ASSERT_TRUE(publish(1, "c", "1").ok());
    ASSERT_TRUE(await_deliveries(0, "c", 1));
    node(0).unsubscribe("c");
    ASSERT_TRUE(publish(1, "c", "2").ok());
    harness().run_for(50);
    EXPECT_EQ(listener(0).serials("c"), serial_range(1, 1));

    // Subscribing again resumes live delivery from the next publish, not the missed one.
    ASSERT_TRUE(subscribe(0, "c").ok());
    ASSERT_TRUE(publish(1, "c", "3").ok());
    ASSERT_TRUE(await_deliveries(0, "c", 2));
    harness().run_for(30);
    EXPECT_EQ(listener(0).serials("c"), (Serials{1, 3}));
}

TEST_P(BackplaneContractTest, UnsubscribeDropsDeliveriesNotYetHandedOver) {
    ASSERT_TRUE(subscribe(0, "c").ok());
    for (int i = 0; i < 3; ++i) node(1).publish(PublishRequest{"c", "1", std::nullopt, kKeepAll, 0}, {});
    node(0).unsubscribe("c");  // the loop has not run since: none of the three has reached the listener
    harness().run_for(50);
    EXPECT_EQ(listener(0).serials("c"), Serials{});
}

TEST_P(BackplaneContractTest, ReadyComesBeforeAnyDelivery) {
    std::vector<std::string> log;
    listener(1).on_each = [&](const Delivery& d) { log.push_back("delivery:" + std::to_string(d.message.serial)); };
    node(1).subscribe("c", [&](BackplaneResult<Unit> r) {
        ASSERT_TRUE(r.ok());
        log.push_back("ready");
        // Published after ready: must be delivered.
        node(0).publish(PublishRequest{"c", "\"after\"", std::nullopt, kKeepAll, 0}, {});
    });
    // Published before ready may or may not be delivered, but never ahead of ready.
    node(0).publish(PublishRequest{"c", "\"before\"", std::nullopt, kKeepAll, 0}, {});
    ASSERT_TRUE(harness().run_until([&] { return !log.empty() && log.back() == "delivery:2"; }));
    harness().run_for(30);
    EXPECT_EQ(std::count(log.begin(), log.end(), "ready"), 1);
    EXPECT_EQ(log.front(), "ready");
    EXPECT_EQ(log.back(), "delivery:2");
}

// ---------------------------------------------------------------------------------------------------------------
// Idempotency

TEST_P(BackplaneContractTest, RepeatedKeyReturnsTheFirstSerialAndIsNotRedelivered) {
    ASSERT_TRUE(subscribe(1, "c").ok());
    auto first = publish(0, "c", "\"x\"", "k1");
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first->serial, 1u);
    EXPECT_FALSE(first->duplicate);
    ASSERT_TRUE(publish(0, "c", "\"y\"").ok());

    auto again = publish(0, "c", "\"x again\"", "k1");
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->serial, 1u);
    EXPECT_TRUE(again->duplicate);
    EXPECT_EQ(again->epoch, first->epoch);
    auto from_b = publish(1, "c", "\"x from b\"", "k1");
    ASSERT_TRUE(from_b.ok());
    EXPECT_EQ(from_b->serial, 1u) << "keys are shared state, not per node";
    EXPECT_TRUE(from_b->duplicate);

    ASSERT_TRUE(await_deliveries(1, "c", 2));
    harness().run_for(50);
    EXPECT_EQ(listener(1).serials("c"), serial_range(1, 2));
    auto h = history(0, "c", std::nullopt, std::nullopt);
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->top, 2u);
    ASSERT_EQ(h->messages.size(), 2u);
    EXPECT_EQ(h->messages[0].data, "\"x\"");
}

TEST_P(BackplaneContractTest, KeysAreIndependentPerChannel) {
    auto a = publish(0, "a", "1", "same");
    auto b = publish(0, "b", "1", "same");
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->serial, 1u);
    EXPECT_EQ(b->serial, 1u);
    EXPECT_FALSE(a->duplicate);
    EXPECT_FALSE(b->duplicate);
}

TEST_P(BackplaneContractTest, KeyExpiresWithTheRetentionTtl) {
    const RetentionPolicy short_ttl{1000, 300};
    ASSERT_EQ(publish(0, "c", "1", "k", short_ttl)->serial, 1u);
    harness().advance_time_ms(150);
    auto dup = publish(0, "c", "1", "k", short_ttl);
    ASSERT_TRUE(dup.ok());
    EXPECT_TRUE(dup->duplicate);
    EXPECT_EQ(dup->serial, 1u);
    harness().advance_time_ms(200);  // 350 ms after the first publish; the duplicate did not extend the key
    auto fresh = publish(0, "c", "1", "k", short_ttl);
    ASSERT_TRUE(fresh.ok());
    EXPECT_FALSE(fresh->duplicate);
    EXPECT_EQ(fresh->serial, 2u);
    auto dup2 = publish(0, "c", "1", "k", short_ttl);
    ASSERT_TRUE(dup2.ok());
    EXPECT_TRUE(dup2->duplicate);
    EXPECT_EQ(dup2->serial, 2u);
}

// ---------------------------------------------------------------------------------------------------------------
// Epochs

TEST_P(BackplaneContractTest, EpochIsStableAcrossPublishes) {
    auto first = publish(0, "c", "1");
    ASSERT_TRUE(first.ok());
    for (int i = 0; i < 5; ++i) EXPECT_EQ(publish(i % 2, "c", "1")->epoch, first->epoch);
    EXPECT_EQ(history(1, "c", std::nullopt, 0)->epoch, first->epoch);
}

TEST_P(BackplaneContractTest, WipeChangesTheEpochAndRestartsSerials) {
    ASSERT_TRUE(subscribe(1, "c").ok());
    ASSERT_TRUE(save_session(0, "sess", SessionRecord{"alice", {}}, 60'000).ok());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(publish(0, "c", "1").ok());
    ASSERT_TRUE(await_deliveries(1, "c", 3));
    const std::string old_epoch = listener(1).deliveries.back().epoch;

    harness().wipe();

    auto h = history(0, "c", std::nullopt, std::nullopt);
    ASSERT_TRUE(h.ok());
    EXPECT_NE(h->epoch, old_epoch);
    EXPECT_EQ(h->top, 0u);
    EXPECT_EQ(serials_of(*h), Serials{});
    auto p = publish(0, "c", "\"new\"");
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->serial, 1u);
    EXPECT_EQ(p->epoch, h->epoch);
    ASSERT_TRUE(await_deliveries(1, "c", 4)) << "the node stays subscribed across a wipe";
    EXPECT_EQ(listener(1).deliveries.back().epoch, p->epoch);
    EXPECT_EQ(listener(1).deliveries.back().message.serial, 1u);
    auto loaded = load_session(1, "sess");
    ASSERT_TRUE(loaded.ok());
    EXPECT_FALSE(loaded->has_value()) << "sessions are wiped too";
}

// ---------------------------------------------------------------------------------------------------------------
// Sessions

TEST_P(BackplaneContractTest, SessionSaveLoadAndOverwrite) {
    SessionRecord record{"alice", {{"news", StreamPosition{5, "e1"}}, {"sports", StreamPosition{0, "e2"}}}};
    ASSERT_TRUE(save_session(0, "s1", record, 60'000).ok());
    auto loaded = load_session(1, "s1");
    ASSERT_TRUE(loaded.ok());
    ASSERT_TRUE(loaded->has_value());
    EXPECT_EQ((*loaded)->subject, "alice");
    EXPECT_EQ((*loaded)->positions, record.positions);

    SessionRecord updated{"", {{"news", StreamPosition{9, "e1"}}}};
    ASSERT_TRUE(save_session(1, "s1", updated, 60'000).ok());
    auto reloaded = load_session(0, "s1");
    ASSERT_TRUE(reloaded.ok() && reloaded->has_value());
    EXPECT_EQ((*reloaded)->subject, "");
    EXPECT_EQ((*reloaded)->positions, updated.positions);
}

TEST_P(BackplaneContractTest, UnknownSessionLoadsAsNothing) {
    auto loaded = load_session(0, "never-saved");
    ASSERT_TRUE(loaded.ok());
    EXPECT_FALSE(loaded->has_value());
}

TEST_P(BackplaneContractTest, SessionExpiresTtlAfterTheLastSave) {
    ASSERT_TRUE(save_session(0, "s", SessionRecord{"a", {}}, 300).ok());
    harness().advance_time_ms(200);
    ASSERT_TRUE(load_session(1, "s")->has_value());
    ASSERT_TRUE(save_session(0, "s", SessionRecord{"a", {}}, 300).ok());  // extends to 500
    harness().advance_time_ms(200);                                          // 400 after the first save
    EXPECT_TRUE(load_session(1, "s")->has_value());
    harness().advance_time_ms(150);  // 350 after the last save
    auto gone = load_session(1, "s");
    ASSERT_TRUE(gone.ok());
    EXPECT_FALSE(gone->has_value());
}

// ---------------------------------------------------------------------------------------------------------------
// close()

TEST_P(BackplaneContractTest, CloseRunsNoPendingCallback) {
    int callbacks = 0;
    auto count = [&](auto) { ++callbacks; };
    node(0).subscribe("c", count);
    for (int i = 0; i < 3; ++i) node(0).publish(PublishRequest{"c", "1", std::nullopt, kKeepAll, 0}, count);
    node(1).publish(PublishRequest{"c", "\"from b\"", std::nullopt, kKeepAll, 0}, {});
    node(0).history(HistoryRequest{"c", std::nullopt, std::nullopt, false, kKeepAll}, count);
    node(0).save_session("s", SessionRecord{}, 60'000, count);
    node(0).load_session("s", count);

    int closed = 0;
    close_node(0, [&] { ++closed; });
    EXPECT_EQ(closed, 0) << "close's done ran inside close()";
    ASSERT_TRUE(harness().run_until([&] { return closed == 1; }));
    harness().run_for(50);
    EXPECT_EQ(callbacks, 0);
    EXPECT_EQ(listener(0).serials("c"), Serials{});

    // The other node carries on; the closed one receives nothing.
    ASSERT_TRUE(publish(1, "c", "\"after\"").ok());
    harness().run_for(30);
    EXPECT_EQ(listener(0).serials("c"), Serials{});
    EXPECT_EQ(closed, 1);
}

TEST_P(BackplaneContractTest, CloseFromACallbackStopsTheRest) {
    int callbacks = 0;
    int closed = 0;
    for (int i = 0; i < 5; ++i) {
        node(0).publish(PublishRequest{"c", "1", std::nullopt, kKeepAll, 0}, [&](auto) {
            ++callbacks;
            if (callbacks == 1) close_node(0, [&] { ++closed; });
        });
    }
    ASSERT_TRUE(harness().run_until([&] { return closed == 1; }));
    harness().run_for(30);
    EXPECT_EQ(callbacks, 1);
}

// ---------------------------------------------------------------------------------------------------------------
// The in-memory factory: two nodes on one loop sharing one store, with a clock the test moves.

class InMemoryHarness final : public BackplaneHarness {
public:
    InMemoryHarness()
        : clock_(std::make_shared<std::atomic<uint64_t>>(1'000'000)),
          store_(std::make_shared<InMemoryStore>([clock = clock_] { return clock->load(); })),
          a_(loop(), store_),
          b_(loop(), store_) {}

    Backplane& node(size_t index) override { return index == 0 ? static_cast<Backplane&>(a_) : b_; }
    void wipe() override { store_->wipe(); }
    void advance_time_ms(uint64_t ms) override { clock_->fetch_add(ms); }

private:
    std::shared_ptr<std::atomic<uint64_t>> clock_;
    std::shared_ptr<InMemoryStore> store_;
    InMemoryBackplane a_;
    InMemoryBackplane b_;
};

BackplaneFactory in_memory_factory() {
    return {"InMemory", [] { return std::make_unique<InMemoryHarness>(); }};
}

INSTANTIATE_TEST_SUITE_P(Memory, BackplaneContractTest, ::testing::Values(in_memory_factory()), factory_name);

// ---------------------------------------------------------------------------------------------------------------
// In-memory only: two loops on two threads share one store, publish concurrently and each sees every message of
// the channel once, in one gapless order.

TEST(InMemoryBackplaneThreads, ConcurrentPublishersSeeOneGaplessOrder) {
    constexpr uint64_t kEach = 500;
    auto store = std::make_shared<InMemoryStore>();
    std::latch subscribed(2);
    std::array<std::vector<uint64_t>, 2> delivered;
    std::array<std::vector<uint64_t>, 2> assigned;
    std::array<std::set<std::string>, 2> epochs;
    std::array<bool, 2> finished{false, false};

    auto run_node = [&](size_t me) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        {
            InMemoryBackplane node(&loop, store);
            RecordingListener listener;
            node.set_listener(&listener);

            bool ready = false;
            node.subscribe("c", [&](BackplaneResult<Unit> r) { ready = r.ok(); });
            while (!ready) uv_run(&loop, UV_RUN_ONCE);
            subscribed.arrive_and_wait();

            // Each publish is issued from the previous one's callback, so both threads keep interleaving.
            std::function<void()> next = [&] {
                if (assigned[me].size() == kEach) return;
                node.publish(PublishRequest{"c", std::to_string(me), std::nullopt, {100'000, 600'000}, 0},
                             [&](BackplaneResult<PublishOutcome> r) {
                                 if (!r.ok()) return;
                                 assigned[me].push_back(r->serial);
                                 next();
                             });
            };
            next();

            uv_timer_t deadline;
            uv_timer_init(&loop, &deadline);
            bool timed_out = false;
            deadline.data = &timed_out;
            uv_timer_start(&deadline, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; }, 5000, 0);
            while (!timed_out && (listener.deliveries.size() < 2 * kEach || assigned[me].size() < kEach)) {
                uv_run(&loop, UV_RUN_ONCE);
            }
            finished[me] = !timed_out;
            for (const auto& d : listener.deliveries) {
                delivered[me].push_back(d.message.serial);
                epochs[me].insert(d.epoch);
            }
            bool closed = false;
            uv_close(reinterpret_cast<uv_handle_t*>(&deadline), nullptr);
            node.close([&] { closed = true; });
            while (!closed) uv_run(&loop, UV_RUN_ONCE);
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        EXPECT_EQ(uv_loop_close(&loop), 0);
    };

    std::thread first(run_node, 0);
    std::thread second(run_node, 1);
    first.join();
    second.join();

    std::vector<uint64_t> all = assigned[0];
    all.insert(all.end(), assigned[1].begin(), assigned[1].end());
    std::sort(all.begin(), all.end());
    std::vector<uint64_t> expected;
    for (uint64_t s = 1; s <= 2 * kEach; ++s) expected.push_back(s);
    EXPECT_EQ(all, expected) << "each publish got its own serial";
    for (size_t n = 0; n < 2; ++n) {
        EXPECT_TRUE(finished[n]) << "node " << n << " timed out";
        EXPECT_EQ(delivered[n], expected) << "node " << n << " saw a gap, a repeat or a reordering";
        EXPECT_EQ(epochs[n].size(), 1u);
    }
}

}  // namespace
}  // namespace herald::testing
