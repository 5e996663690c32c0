// The hub's replay, gap-repair and discontinuity counters, driven through the same fake backplane and links as
// hub_test.cpp: each counter moves exactly as often as the client sees the event.
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "tests/unit/broker/hub_fixture.h"

namespace herald::testing {
namespace {

class HubMetricsTest : public HubTest {
protected:
    double replayed() { return metrics_.messages_replayed.Value(); }
    double gaps() { return metrics_.gaps_repaired.Value(); }
    double discontinuities(const char* reason) { return metrics_.discontinuities.at(reason).Value(); }
};

TEST_F(HubMetricsTest, ReplayCountsEachMessageSentFromHistoryButNotTheLiveOnesAfterIt) {
    Peer& p = connected_peer();
    say(p, subscribe_since_cmd(2, "c", 5, "e1"));
    backplane_.subscribes[0].complete(Unit{});
    backplane_.pending_history("c")->complete(slice("e1", 8, 1));
    HistoryCall* replay = backplane_.pending_history("c");
    ASSERT_NE(replay, nullptr);
    backplane_.deliver_all("c", "e1", {9, 10, 11});  // live, held until the replay is queued
    replay->complete(slice("e1", 10, 1, range(6, 10)));
    EXPECT_EQ(message_serials(p.link.take_new()), (Serials{6, 7, 8, 9, 10, 11}));
    EXPECT_EQ(replayed(), 5) << "6..10 came from history; 11 is live (and the live 9, 10 were duplicates)";

    Peer& q = connected_peer();
    say(q, subscribe_since_cmd(3, "c", 8, "e1"));
    HistoryCall* second = backplane_.pending_history("c");
    ASSERT_NE(second, nullptr);
    second->complete(slice("e1", 11, 1, range(9, 11)));
    EXPECT_EQ(message_serials(q.link.take_new()), (Serials{9, 10, 11}));
    EXPECT_EQ(replayed(), 8) << "one per message per subscriber";
    EXPECT_EQ(gaps(), 0);
}

TEST_F(HubMetricsTest, APlainSubscribeAndLiveDeliveriesReplayNothing) {
    Peer& p = connected_peer();
    subscribe_live(p, "c", "e1", 3);
    backplane_.deliver_all("c", "e1", {4, 5, 5, 6});
    EXPECT_EQ(message_serials(p.link.take_new()), (Serials{4, 5, 6}));
    EXPECT_EQ(replayed(), 0);
    EXPECT_EQ(gaps(), 0);
    EXPECT_EQ(discontinuities("history_expired") + discontinuities("epoch_changed"), 0);
}

TEST_F(HubMetricsTest, ALiveGapFilledFromHistoryCountsOnce) {
    Peer& p = connected_peer();
    subscribe_live(p, "c", "e1", 3);
    backplane_.deliver("c", "e1", 6);
    backplane_.deliver("c", "e1", 7);
    HistoryCall* repair = backplane_.pending_history("c");
    ASSERT_NE(repair, nullptr);
    EXPECT_EQ(gaps(), 0) << "counted when repaired, not when detected";
    repair->complete(slice("e1", 6, 1, {4, 5, 6}));
    EXPECT_EQ(message_serials(p.link.take_new()), (Serials{4, 5, 6, 7}));
    EXPECT_EQ(gaps(), 1);
    EXPECT_EQ(replayed(), 0) << "a repair is live delivery, not replay";
    EXPECT_EQ(discontinuities("history_expired"), 0);
}

TEST_F(HubMetricsTest, AGapNoLongerInHistoryCountsADiscontinuity) {
    Peer& p = connected_peer();
    subscribe_live(p, "c", "e1", 3);
    backplane_.deliver("c", "e1", 7);
    HistoryCall* repair = backplane_.pending_history("c");
    ASSERT_NE(repair, nullptr);
    repair->complete(slice("e1", 7, 6, {6, 7}));
    EXPECT_EQ(ops(p.link.take_new()), (std::vector<std::string>{"discontinuity", "message", "message"}));
    EXPECT_EQ(discontinuities("history_expired"), 1);
    EXPECT_EQ(discontinuities("epoch_changed"), 0);
    EXPECT_EQ(gaps(), 1) << "6 and 7 still came from history";
}

TEST_F(HubMetricsTest, AnEpochChangeCountsADiscontinuityButNoGap) {
    Peer& p = connected_peer();
    subscribe_live(p, "c", "e1", 3);
    backplane_.deliver("c", "e2", 1);
    EXPECT_EQ(ops(p.link.take_new()), (std::vector<std::string>{"discontinuity", "message"}));
    EXPECT_EQ(discontinuities("epoch_changed"), 1);
    EXPECT_EQ(discontinuities("history_expired"), 0);
    EXPECT_EQ(gaps(), 0);
}

TEST_F(HubMetricsTest, AResyncCountsOnlyTheChannelsThatWereMissingMessages) {
    Peer& p = connected_peer();
    subscribe_live(p, "a", "e1", 3, 2);
    subscribe_live(p, "b", "e1", 10, 3);
    backplane_.listener->on_resync();
    HistoryCall* ra = backplane_.pending_history("a");
    HistoryCall* rb = backplane_.pending_history("b");
    ASSERT_NE(ra, nullptr);
    ASSERT_NE(rb, nullptr);
    ra->complete(slice("e1", 5, 1, {4, 5}));
    rb->complete(slice("e1", 10, 1));  // nothing was lost on b
    EXPECT_EQ(message_serials(p.link.take_new(), "a"), (Serials{4, 5}));
    EXPECT_EQ(gaps(), 1);
}

}  // namespace
}  // namespace herald::testing
