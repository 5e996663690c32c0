// MeteredBackplane over the fake backplane with hand-moved clocks: every call and event is forwarded unchanged, each
// call's round trip lands in its op's histogram, and reachability, reconnects, resyncs and cross-node lag are counted.
#include "broker/metered_backplane.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/broker/fake_backplane.h"

namespace herald::testing {
namespace {

// What the hub would see: every listener event, in order.
class RecordingListener final : public BackplaneListener {
public:
    std::vector<std::string> events;
    void on_delivery(const Delivery& d) override {
        events.push_back("delivery " + d.channel + " " + d.epoch + " " + std::to_string(d.message.serial));
    }
    void on_availability(bool up) override { events.push_back(up ? "up" : "down"); }
    void on_resync() override { events.push_back("resync"); }
};

struct Observed {
    uint64_t count = 0;
    double sum = 0;
};

Observed observed(prometheus::Histogram& h) {
    auto m = h.Collect();
    return {m.histogram.sample_count, m.histogram.sample_sum};
}

class MeteredBackplaneTest : public ::testing::Test {
protected:
    MeteredBackplane& metered() {
        if (!metered_) {
            metered_ = std::make_unique<MeteredBackplane>(
                inner_, metrics_, MeterClocks{[this] { return mono_ns_; }, [this] { return wall_us_; }});
            metered_->set_listener(&hub_);
        }
        return *metered_;
    }

    Observed duration(const char* op) { return observed(metrics_.backplane_command_duration.at(op)); }
    double up() { return metrics_.backplane_up.Value(); }
    double reconnects() { return metrics_.backplane_reconnects.Value(); }

    Metrics metrics_;
    FakeBackplane inner_;
    RecordingListener hub_;
    uint64_t mono_ns_ = 7'000'000'000;
    uint64_t wall_us_ = 1'764'000'000'000'000;
    std::unique_ptr<MeteredBackplane> metered_;  // last: destroyed before the backplane it wraps
};

TEST_F(MeteredBackplaneTest, PublishIsForwardedAndItsRoundTripObservedWhenTheAnswerArrives) {
    std::optional<Result<PublishOutcome, BackplaneError>> answer;
    metered().publish(PublishRequest{"c", "1", std::string("k"), RetentionPolicy{5, 6}, 42},
                      [&](auto result) { answer = std::move(result); });
    ASSERT_EQ(inner_.publishes.size(), 1u);
    const PublishRequest& forwarded = inner_.publishes[0].request;
    EXPECT_EQ(forwarded.channel, "c");
    EXPECT_EQ(forwarded.data, "1");
    EXPECT_EQ(forwarded.idempotency_key, std::optional<std::string>("k"));
    EXPECT_EQ(forwarded.retention.max_messages, 5u);
    EXPECT_EQ(forwarded.published_at_us, 42u);
    EXPECT_FALSE(answer) << "the wrapper never answers by itself";
    EXPECT_EQ(duration("publish").count, 0u) << "nothing observed before the answer";

    mono_ns_ += 2'500'000;  // 2.5 ms
    inner_.publishes[0].complete(PublishOutcome{9, "e1", false});
    ASSERT_TRUE(answer);
    ASSERT_TRUE(answer->ok());
    EXPECT_EQ(answer->value().serial, 9u);
    EXPECT_EQ(answer->value().epoch, "e1");
    EXPECT_EQ(duration("publish").count, 1u);
    EXPECT_DOUBLE_EQ(duration("publish").sum, 0.0025);
    for (const char* other : {"history", "subscribe", "save_session", "load_session"})
        EXPECT_EQ(duration(other).count, 0u) << other;
}

TEST_F(MeteredBackplaneTest, EveryTimedOpLandsInItsOwnSeriesAndErrorsAreTimedToo) {
    int answers = 0;
    metered().history(HistoryRequest{"h", 3, 10, false, {}}, [&](auto r) { answers += r.ok() ? 1 : 100; });
    metered().subscribe("s", [&](auto r) { answers += r.ok() ? 1 : 100; });
    metered().save_session("sess", SessionRecord{"alice", {}}, 1234, [&](auto r) { answers += r.ok() ? 1 : 100; });
    metered().load_session("sess", [&](auto r) { answers += r.ok() ? 1 : 100; });
    ASSERT_EQ(inner_.histories.size(), 1u);
    ASSERT_EQ(inner_.subscribes.size(), 1u);
    ASSERT_EQ(inner_.saves.size(), 1u);
    ASSERT_EQ(inner_.loads.size(), 1u);
    EXPECT_EQ(inner_.histories[0].request.since, std::optional<uint64_t>(3));
    EXPECT_EQ(inner_.histories[0].request.limit, std::optional<uint64_t>(10));
    EXPECT_EQ(inner_.subscribes[0].request, "s");
    EXPECT_EQ(inner_.saves[0].request.session_id, "sess");
    EXPECT_EQ(inner_.saves[0].request.record.subject, "alice");
    EXPECT_EQ(inner_.saves[0].request.ttl_ms, 1234u);
    EXPECT_EQ(inner_.loads[0].request, "sess");

    mono_ns_ += 1'000'000;
    inner_.histories[0].complete(slice("e1", 5, 1, {4, 5}));
    mono_ns_ += 1'000'000;
    inner_.subscribes[0].complete(Unit{});
    mono_ns_ += 1'000'000;
    inner_.saves[0].fail_unavailable();
    mono_ns_ += 1'000'000;
    inner_.loads[0].complete(std::optional<SessionRecord>{});
    EXPECT_EQ(answers, 103) << "three successes and one Unavailable, each forwarded once";
    EXPECT_DOUBLE_EQ(duration("history").sum, 0.001);
    EXPECT_DOUBLE_EQ(duration("subscribe").sum, 0.002);
    EXPECT_DOUBLE_EQ(duration("save_session").sum, 0.003);
    EXPECT_DOUBLE_EQ(duration("load_session").sum, 0.004);
    for (const char* op : {"history", "subscribe", "save_session", "load_session"})
        EXPECT_EQ(duration(op).count, 1u) << op;
    EXPECT_EQ(duration("publish").count, 0u);
}

TEST_F(MeteredBackplaneTest, AnswersOutOfOrderAreEachTimedFromTheirOwnCall) {
    metered().publish(PublishRequest{"c", "1", {}, {}, 0}, [](auto) {});
    mono_ns_ += 10'000'000;
    metered().publish(PublishRequest{"c", "2", {}, {}, 0}, [](auto) {});
    mono_ns_ += 1'000'000;
    inner_.publishes[1].complete(PublishOutcome{2, "e1", false});  // 1 ms
    mono_ns_ += 1'000'000;
    inner_.publishes[0].complete(PublishOutcome{1, "e1", false});  // 12 ms
    EXPECT_EQ(duration("publish").count, 2u);
    EXPECT_DOUBLE_EQ(duration("publish").sum, 0.013);
}

TEST_F(MeteredBackplaneTest, UntimedCallsAndQueriesAreForwarded) {
    inner_.up = false;
    EXPECT_FALSE(metered().available());
    inner_.up = true;
    EXPECT_TRUE(metered().available());
    EXPECT_EQ(metered().kind(), "fake");
    metered().unsubscribe("gone");
    EXPECT_EQ(inner_.unsubscribes, std::vector<std::string>{"gone"});
    bool closed = false;
    metered().close([&] { closed = true; });
    EXPECT_TRUE(closed) << "close() reaches the inner backplane with its callback";
}

TEST_F(MeteredBackplaneTest, ListenerEventsReachTheHubInOrder) {
    metered();
    ASSERT_NE(inner_.listener, nullptr) << "the wrapper listens to the inner backplane";
    ASSERT_NE(inner_.listener, &hub_) << "the hub hears the inner backplane only through the wrapper";
    inner_.deliver("c", "e1", 4);
    inner_.listener->on_availability(false);
    inner_.listener->on_availability(true);
    inner_.listener->on_resync();
    EXPECT_EQ(hub_.events, (std::vector<std::string>{"delivery c e1 4", "down", "up", "resync"}));
    EXPECT_EQ(metrics_.backplane_resyncs.Value(), 1);
}

TEST_F(MeteredBackplaneTest, WithoutAListenerEventsAreCountedAndDropped) {
    metered().set_listener(nullptr);
    inner_.deliver("c", "e1", 4);
    inner_.listener->on_resync();
    EXPECT_TRUE(hub_.events.empty());
    EXPECT_EQ(metrics_.backplane_resyncs.Value(), 1);
    EXPECT_EQ(observed(metrics_.cross_node_lag).count, 1u);
}

TEST_F(MeteredBackplaneTest, DestroyingTheWrapperDetachesItFromTheInnerBackplane) {
    metered();
    metered_.reset();
    EXPECT_EQ(inner_.listener, nullptr);
}

TEST_F(MeteredBackplaneTest, UpStartsFromTheInnerStateAndTheFirstUpIsNoReconnect) {
    inner_.up = false;  // Redis: not connected yet when the node starts
    metered();
    EXPECT_EQ(up(), 0);
    inner_.listener->on_availability(true);
    EXPECT_EQ(up(), 1);
    EXPECT_EQ(reconnects(), 0) << "coming up the first time is not a reconnect";
    inner_.listener->on_availability(false);
    EXPECT_EQ(up(), 0);
    EXPECT_EQ(reconnects(), 0);
    inner_.listener->on_availability(true);
    EXPECT_EQ(up(), 1);
    EXPECT_EQ(reconnects(), 1);
    inner_.listener->on_availability(true);  // no change: not a transition
    EXPECT_EQ(reconnects(), 1);
    inner_.listener->on_availability(false);
    inner_.listener->on_availability(false);
    inner_.listener->on_availability(true);
    EXPECT_EQ(reconnects(), 2);
}

TEST_F(MeteredBackplaneTest, ABackplaneUpFromTheStartCountsItsFirstRecovery) {
    inner_.up = true;
    metered();
    EXPECT_EQ(up(), 1);
    inner_.listener->on_availability(false);
    inner_.listener->on_availability(true);
    EXPECT_EQ(reconnects(), 1);
    EXPECT_EQ(up(), 1);
}

TEST_F(MeteredBackplaneTest, CrossNodeLagIsWallClockNowMinusPublishedAt) {
    metered();
    inner_.listener->on_delivery(Delivery{"c", "e1", StoredMessage{1, "1", wall_us_ - 1'500}});
    Observed lag = observed(metrics_.cross_node_lag);
    EXPECT_EQ(lag.count, 1u);
    EXPECT_DOUBLE_EQ(lag.sum, 0.0015);

    inner_.listener->on_delivery(Delivery{"c", "e1", StoredMessage{2, "2", 0}});
    EXPECT_EQ(observed(metrics_.cross_node_lag).count, 1u) << "an unstamped message (published_at_us 0) is skipped";

    inner_.listener->on_delivery(Delivery{"c", "e1", StoredMessage{3, "3", wall_us_ + 3'000'000}});
    lag = observed(metrics_.cross_node_lag);
    EXPECT_EQ(lag.count, 2u) << "a publisher clock ahead of ours still counts, as zero lag";
    EXPECT_DOUBLE_EQ(lag.sum, 0.0015);
    EXPECT_EQ(hub_.events.size(), 3u) << "every delivery is forwarded, stamped or not";
}

}  // namespace
}  // namespace herald::testing
