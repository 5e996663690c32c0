// The hub's herald.v1.json semantics against a fake backplane and fake links: no loop, no socket. Each test drives
// backplane completions and deliveries in a chosen order and checks exactly what each client receives.
#include "broker/hub.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/unit/broker/hub_fixture.h"

namespace herald::testing {
namespace {

// ---- connect ----------------------------------------------------------------------------------------------------

TEST_F(HubTest, ConnectRepliesConnectedAndSavesTheSession) {
    Peer& p = attach();
    say(p, R"({"op":"connect","id":1})");
    ASSERT_EQ(p.link.sent.size(), 1u);
    const json& reply = p.link.sent[0].json;
    const std::string session = reply.value("session", "");
    EXPECT_TRUE(is_session_id(session)) << "session must be 32 lowercase hex chars, got '" << session << "'";
    EXPECT_EQ(p.link.sent[0].text,
              R"({"op":"connected","id":1,"session":")" + session + R"(","node":"n1","heartbeat":25,"resumed":false})");
    EXPECT_TRUE(p.link.connected) << "mark_connected() stops the connect deadline";
    EXPECT_FALSE(p.link.paused);
    EXPECT_TRUE(backplane_.loads.empty()) << "no session given: nothing to load";

    ASSERT_EQ(backplane_.saves.size(), 1u);
    EXPECT_EQ(backplane_.saves[0].request.session_id, session);
    EXPECT_EQ(backplane_.saves[0].request.ttl_ms, 120'000u);
    EXPECT_TRUE(backplane_.saves[0].request.record.positions.empty());

    Peer& other = attach();
    say(other, R"({"op":"connect"})");
    ASSERT_EQ(other.link.sent.size(), 1u);
    EXPECT_FALSE(other.link.sent[0].json.contains("id")) << "no id given, none echoed";
    EXPECT_NE(other.link.sent[0].json.value("session", ""), session) << "every connection gets a fresh session";
}

TEST_F(HubTest, BeforeConnectOnlyPingIsAllowed) {
    Peer& p = attach();
    say(p, R"({"op":"subscribe","id":2,"channel":"c"})");
    say(p, R"({"op":"unsubscribe","id":3,"channel":"c"})");
    say(p, R"({"op":"publish","id":4,"channel":"c","data":1})");
    say(p, R"({"op":"history","id":5,"channel":"c"})");
    say(p, R"({"op":"ping","id":6})");
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 5u);
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(got[i]["op"], "error") << got[i];
        EXPECT_EQ(got[i]["code"], "not_connected") << got[i];
        EXPECT_EQ(got[i]["id"], i + 2) << got[i];
    }
    EXPECT_EQ(p.link.sent[4].text, R"({"op":"pong","id":6})");
    EXPECT_TRUE(backplane_.subscribes.empty());
    EXPECT_TRUE(backplane_.publishes.empty());
    EXPECT_TRUE(backplane_.histories.empty());
    EXPECT_TRUE(backplane_.saves.empty());
    EXPECT_TRUE(p.link.open);
}

TEST_F(HubTest, SecondConnectIsAlreadyConnected) {
    Peer& p = connected_peer();
    say(p, R"({"op":"connect","id":2})");
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0]["op"], "error");
    EXPECT_EQ(got[0]["code"], "already_connected");
    EXPECT_EQ(got[0]["id"], 2);
    EXPECT_EQ(backplane_.saves.size(), 1u) << "the second connect must not touch the session";
    EXPECT_TRUE(p.link.open);
}

TEST_F(HubTest, InvalidJsonIsBadRequestAndTheConnectionStays) {
    Peer& p = connected_peer();
    say(p, "{not json");
    say(p, R"({"op":"ping","id":"x"})");
    say(p, R"({"op":"ping","id":7})");
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0]["op"], "error");
    EXPECT_EQ(got[0]["code"], "bad_request");
    EXPECT_FALSE(got[0].contains("id"));
    EXPECT_EQ(got[1]["code"], "bad_request");
    EXPECT_FALSE(got[1].contains("id")) << "a non-integer id is not echoed";
    EXPECT_EQ(got[2], json::parse(R"({"op":"pong","id":7})"));
    EXPECT_TRUE(p.link.open);
    EXPECT_FALSE(p.link.closed_with.has_value());
}

// ---- subscribe, fan-out -----------------------------------------------------------------------------------------

TEST_F(HubTest, SubscribeToANewChannelGoesLiveAtTheTop) {
    Peer& p = connected_peer();
    say(p, subscribe_cmd(2, "c"));
    EXPECT_TRUE(p.link.take_new().empty()) << "no reply before the channel is live";
    ASSERT_EQ(backplane_.subscribes.size(), 1u);
    EXPECT_EQ(backplane_.subscribes[0].request, "c");
    EXPECT_TRUE(backplane_.histories.empty()) << "the top is read only once delivery is set up";

    backplane_.subscribes[0].complete(Unit{});
    ASSERT_EQ(backplane_.histories.size(), 1u);
    const HistoryRequest& sync = backplane_.histories[0].request;
    EXPECT_EQ(sync.channel, "c");
    EXPECT_FALSE(sync.since.has_value());
    ASSERT_TRUE(sync.limit.has_value());
    EXPECT_EQ(*sync.limit, 0u) << "the sync read only learns epoch and top";
    EXPECT_TRUE(p.link.take_new().empty());

    backplane_.histories[0].complete(slice("e1", 7, 1));
    ASSERT_EQ(p.link.sent.size(), 2u);
    EXPECT_EQ(p.link.sent[1].text,
              R"({"op":"subscribed","id":2,"channel":"c","serial":7,"epoch":"e1","resumed":false,"replayed":0})");

    backplane_.deliver_all("c", "e1", {8, 9});
    ASSERT_EQ(p.link.sent.size(), 4u);
    EXPECT_EQ(p.link.sent[2].text, message_text("c", 8));
    EXPECT_EQ(p.link.sent[3].text, message_text("c", 9));
    EXPECT_EQ(p.link.sent[2].serial, 8u);
    EXPECT_EQ(hub().channel_count(), 1u);
}

TEST_F(HubTest, SecondSubscriberReusesTheChannelAndSharesEachFrame) {
    Peer& a = connected_peer();
    Peer& b = connected_peer();
    subscribe_live(a, "c", "e1", 7);
    backplane_.deliver("c", "e1", 8);
    say(b, subscribe_cmd(3, "c"));
    auto got = b.link.take_new();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], json::parse(
                          R"({"op":"subscribed","id":3,"channel":"c","serial":8,"epoch":"e1","resumed":false,"replayed":0})"))
        << "a live channel answers at once, at its last forwarded serial";
    EXPECT_EQ(backplane_.subscribes.size(), 1u) << "one backplane subscription per channel per node";
    EXPECT_EQ(backplane_.histories.size(), 1u) << "no second sync read";

    backplane_.deliver("c", "e1", 9);
    ASSERT_FALSE(a.link.sent.empty());
    ASSERT_FALSE(b.link.sent.empty());
    const auto& fa = a.link.sent.back();
    const auto& fb = b.link.sent.back();
    EXPECT_EQ(fa.text, message_text("c", 9));
    EXPECT_EQ(fb.text, message_text("c", 9));
    EXPECT_EQ(fa.frame.get(), fb.frame.get()) << "the fan-out frames a message once and shares the buffer";
}

TEST_F(HubTest, SubscriberJoiningWhileSyncingIsAnsweredWhenTheChannelGoesLive) {
    Peer& a = connected_peer();
    Peer& b = connected_peer();
    say(a, subscribe_cmd(2, "c"));
    backplane_.subscribes[0].complete(Unit{});
    say(b, subscribe_cmd(3, "c"));
    EXPECT_TRUE(b.link.take_new().empty());
    EXPECT_EQ(backplane_.subscribes.size(), 1u);
    backplane_.pending_history("c")->complete(slice("e1", 4, 1));
    EXPECT_EQ(a.link.take_new(), (std::vector<json>{json::parse(
                                     R"({"op":"subscribed","id":2,"channel":"c","serial":4,"epoch":"e1","resumed":false,"replayed":0})")}));
    EXPECT_EQ(b.link.take_new(), (std::vector<json>{json::parse(
                                     R"({"op":"subscribed","id":3,"channel":"c","serial":4,"epoch":"e1","resumed":false,"replayed":0})")}));
    backplane_.deliver("c", "e1", 5);
    EXPECT_EQ(message_serials(a.link.take_new()), Serials{5});
    EXPECT_EQ(message_serials(b.link.take_new()), Serials{5});
}

TEST_F(HubTest, DeliveriesBeforeTheSyncReadAreHeldAndCutAtTheTop) {
    Peer& p = connected_peer();
    say(p, subscribe_cmd(2, "c"));
    backplane_.subscribes[0].complete(Unit{});
    // Published while the top is being read: 5 and 6 are at or below the top the read will return.
    backplane_.deliver_all("c", "e1", {5, 6, 7, 8});
    EXPECT_TRUE(p.link.take_new().empty()) << "nothing may reach the client before `subscribed`";
    backplane_.pending_history("c")->complete(slice("e1", 6, 1));

    auto got = p.link.take_new();
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got[0]["op"], "subscribed");
    EXPECT_EQ(got[0]["serial"], 6) << "subscribed.serial is the top the sync read returned";
    EXPECT_EQ(message_serials(got), (Serials{7, 8}))
        << "held deliveries above the top must reach the subscriber, those at or below it are dropped";

    backplane_.deliver("c", "e1", 9);
    EXPECT_EQ(message_serials(p.link.take_new()), Serials{9});
}

TEST_F(HubTest, SubscribeToALiveChannelStartsAtItsLastSerial) {
    Peer& a = connected_peer();
    Peer& b = connected_peer();
    subscribe_live(a, "c", "e1", 3);
    backplane_.deliver_all("c", "e1", {4, 5});
    say(b, subscribe_cmd(7, "c"));
    auto got = b.link.take_new();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0]["serial"], 5);
    EXPECT_EQ(got[0]["id"], 7);
    backplane_.deliver("c", "e1", 6);
    EXPECT_EQ(message_serials(b.link.take_new()), Serials{6});
    EXPECT_EQ(message_serials(a.link.take_new()), (Serials{4, 5, 6}));
}

TEST_F(HubTest, AlreadySubscribedAndNotSubscribedAreErrors) {
    Peer& p = connected_peer();
    subscribe_live(p, "c", "e1", 0);
    say(p, subscribe_cmd(3, "c"));
    say(p, R"({"op":"unsubscribe","id":4,"channel":"other"})");
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0]["op"], "error");
    EXPECT_EQ(got[0]["code"], "already_subscribed");
    EXPECT_EQ(got[0]["id"], 3);
    EXPECT_EQ(got[1]["op"], "error");
    EXPECT_EQ(got[1]["code"], "not_subscribed");
    EXPECT_EQ(got[1]["id"], 4);
    EXPECT_EQ(backplane_.subscribes.size(), 1u);
    backplane_.deliver("c", "e1", 1);
    EXPECT_EQ(message_serials(p.link.take_new()), Serials{1}) << "the refused subscribe left the first one alone";
}

TEST_F(HubTest, SubscribeFailureAnswersWithAnErrorAndForgetsTheChannel) {
    Peer& p = connected_peer();
    say(p, subscribe_cmd(2, "c"));
    backplane_.subscribes[0].fail_unavailable();
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0]["op"], "error");
    EXPECT_EQ(got[0]["code"], "unavailable");
    EXPECT_EQ(got[0]["id"], 2);
    EXPECT_EQ(hub().channel_count(), 0u);
    say(p, subscribe_cmd(3, "c"));
    EXPECT_EQ(backplane_.subscribes.size(), 2u) << "a later subscribe tries again";
}

// ---- resume on subscribe -----------------------------------------------------------------------------------------

TEST_F(HubTest, ResumeReplaysFirstThenLiveWithoutGapOrDuplicateAtTheSeam) {
    Peer& p = connected_peer();
    say(p, subscribe_since_cmd(2, "c", 5, "e1"));
    backplane_.subscribes[0].complete(Unit{});
    backplane_.pending_history("c")->complete(slice("e1", 8, 1));  // sync: the channel is live at 8

    HistoryCall* replay = backplane_.pending_history("c");
    ASSERT_NE(replay, nullptr) << "a resume reads history since the client's position";
    ASSERT_TRUE(replay->request.since.has_value());
    EXPECT_EQ(*replay->request.since, 5u);
    EXPECT_FALSE(replay->request.newest);

    backplane_.deliver_all("c", "e1", {9, 10, 11});  // live, while the replay read is in flight
    EXPECT_TRUE(p.link.take_new().empty()) << "nothing before `subscribed`";

    replay->complete(slice("e1", 10, 1, range(6, 10)));
    auto got = p.link.take_new();
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(p.link.sent[1].text,
              R"({"op":"subscribed","id":2,"channel":"c","serial":10,"epoch":"e1","resumed":true,"replayed":5})");
    EXPECT_EQ(message_serials(got), (Serials{6, 7, 8, 9, 10, 11}));

    backplane_.deliver("c", "e1", 12);
    EXPECT_EQ(message_serials(p.link.take_new()), Serials{12});
}

TEST_F(HubTest, ResumeOnALiveChannelHoldsLiveFramesUntilTheReplayIsQueued) {
    Peer& a = connected_peer();
    Peer& b = connected_peer();
    subscribe_live(a, "c", "e1", 8);
    say(b, subscribe_since_cmd(3, "c", 5, "e1"));
    HistoryCall* replay = backplane_.pending_history("c");
    ASSERT_NE(replay, nullptr);
    backplane_.deliver_all("c", "e1", {9, 10});
    EXPECT_TRUE(b.link.take_new().empty());
    replay->complete(slice("e1", 9, 1, range(6, 9)));
    auto got = b.link.take_new();
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got[0], json::parse(
                          R"({"op":"subscribed","id":3,"channel":"c","serial":9,"epoch":"e1","resumed":true,"replayed":4})"));
    EXPECT_EQ(message_serials(got), (Serials{6, 7, 8, 9, 10}));
    EXPECT_EQ(message_serials(a.link.take_new()), (Serials{9, 10}));
}

struct RefusedResume {
    const char* name;
    uint64_t since;
    const char* since_epoch;
    HistorySlice answer;
    const char* reason;
};

void PrintTo(const RefusedResume& c, std::ostream* os) { *os << c.name; }

class HubResumeRefusedTest : public HubTest, public ::testing::WithParamInterface<RefusedResume> {};

TEST_P(HubResumeRefusedTest, GoesLiveFromTheTopWithTheReason) {
    const RefusedResume& c = GetParam();
    Peer& p = connected_peer();
    say(p, subscribe_since_cmd(2, "c", c.since, c.since_epoch));
    backplane_.subscribes[0].complete(Unit{});
    backplane_.pending_history("c")->complete(slice("e1", 10, c.answer.oldest));
    if (HistoryCall* replay = backplane_.pending_history("c")) replay->complete(c.answer);
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 1u) << "only `subscribed`: nothing is replayed";
    EXPECT_EQ(got[0], json::parse(std::string(R"({"op":"subscribed","id":2,"channel":"c","serial":10,"epoch":"e1",)") +
                                  R"("resumed":false,"replayed":0,"reason":")" + c.reason + "\"}"));
    backplane_.deliver("c", "e1", 11);
    EXPECT_EQ(message_serials(p.link.take_new()), Serials{11}) << "live continues after the top";
}

INSTANTIATE_TEST_SUITE_P(
    Reasons, HubResumeRefusedTest,
    ::testing::Values(RefusedResume{"EpochChanged", 5, "e0", slice("e1", 10, 1, range(6, 10)), "epoch_changed"},
                      RefusedResume{"HistoryExpired", 2, "e1", slice("e1", 10, 5, range(5, 10)), "history_expired"},
                      RefusedResume{"InvalidPosition", 20, "e1", slice("e1", 10, 1), "invalid_position"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(HubTest, ResumeAtTheTopOrAtTheOldestBoundaryIsResumed) {
    Peer& p = connected_peer();
    say(p, subscribe_since_cmd(2, "top", 10, "e1"));
    say(p, subscribe_since_cmd(3, "edge", 4, "e1"));
    for (auto& s : backplane_.subscribes) s.complete(Unit{});
    backplane_.pending_history("top")->complete(slice("e1", 10, 11));  // history empty, nothing missed
    backplane_.pending_history("edge")->complete(slice("e1", 10, 5));
    if (HistoryCall* h = backplane_.pending_history("top")) h->complete(slice("e1", 10, 11));
    HistoryCall* edge = backplane_.pending_history("edge");
    ASSERT_NE(edge, nullptr);
    edge->complete(slice("e1", 10, 5, range(5, 10)));  // since 4, oldest 5: nothing lost
    auto got = p.link.take_new();
    std::vector<json> subscribed;
    for (const auto& j : got)
        if (j["op"] == "subscribed") subscribed.push_back(j);
    ASSERT_EQ(subscribed.size(), 2u);
    EXPECT_EQ(subscribed[0], json::parse(
                                 R"({"op":"subscribed","id":2,"channel":"top","serial":10,"epoch":"e1","resumed":true,"replayed":0})"));
    EXPECT_EQ(subscribed[1], json::parse(
                                 R"({"op":"subscribed","id":3,"channel":"edge","serial":10,"epoch":"e1","resumed":true,"replayed":6})"));
    EXPECT_EQ(message_serials(got, "edge"), range(5, 10));
    EXPECT_EQ(message_serials(got, "top"), Serials{});
}

TEST_F(HubTest, EpochChangeWhileAResumeReadIsPendingStillAnswersSubscribedFirst) {
    Peer& a = connected_peer();
    Peer& b = connected_peer();
    subscribe_live(a, "c", "e1", 8);
    say(b, subscribe_since_cmd(3, "c", 5, "e1"));
    HistoryCall* replay = backplane_.pending_history("c");
    ASSERT_NE(replay, nullptr);
    backplane_.deliver("c", "e2", 1);  // the channel's lineage was lost meanwhile
    replay->complete(slice("e1", 8, 1, range(6, 8)));
    auto got = b.link.take_new();
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got[0]["op"], json("subscribed")) << "every frame of a channel must follow its `subscribed`; got ops "
                                          << json(ops(got)).dump();
    const std::vector<std::string> names = ops(got);
    EXPECT_EQ(std::count(names.begin(), names.end(), std::string("subscribed")), 1);
}

// ---- live continuity ----------------------------------------------------------------------------------------------

TEST_F(HubTest, LiveGapIsRepairedFromHistoryAndLaterDeliveriesWait) {
    Peer& p = connected_peer();
    subscribe_live(p, "c", "e1", 3);
    backplane_.deliver("c", "e1", 6);
    HistoryCall* repair = backplane_.pending_history("c");
    ASSERT_NE(repair, nullptr) << "a hole (4, 5 missing) must be filled from history";
    ASSERT_TRUE(repair->request.since.has_value());
    EXPECT_EQ(*repair->request.since, 3u);
    EXPECT_FALSE(repair->request.newest);
    EXPECT_TRUE(p.link.take_new().empty()) << "6 may not overtake 4 and 5";

    backplane_.deliver("c", "e1", 7);  // during the repair
    EXPECT_TRUE(p.link.take_new().empty());
    repair->complete(slice("e1", 6, 1, {4, 5, 6}));
    EXPECT_EQ(message_serials(p.link.take_new()), (Serials{4, 5, 6, 7}));
    EXPECT_EQ(backplane_.pending_history_count(), 0u);

    backplane_.deliver("c", "e1", 8);
    EXPECT_EQ(message_serials(p.link.take_new()), Serials{8});
}

TEST_F(HubTest, GapNoLongerInHistoryIsAnnouncedAsDiscontinuity) {
    Peer& p = connected_peer();
    subscribe_live(p, "c", "e1", 3);
    backplane_.deliver("c", "e1", 7);
    HistoryCall* repair = backplane_.pending_history("c");
    ASSERT_NE(repair, nullptr);
    repair->complete(slice("e1", 7, 6, {6, 7}));
    ASSERT_EQ(p.link.sent.size(), 5u) << json(ops(p.link.all())).dump();  // connected, subscribed, notice, 6, 7
    EXPECT_EQ(p.link.sent[2].text,
              R"({"op":"discontinuity","channel":"c","epoch":"e1","serial":5,"reason":"history_expired"})");
    EXPECT_EQ(p.link.sent[3].text, message_text("c", 6));
    EXPECT_EQ(p.link.sent[4].text, message_text("c", 7));
}

TEST_F(HubTest, EpochChangeInADeliveryIsAnnouncedThenTheNewEpochStartsAtOne) {
    Peer& p = connected_peer();
    subscribe_live(p, "c", "e1", 3);
    backplane_.deliver("c", "e2", 1);
    backplane_.deliver("c", "e2", 2);
    ASSERT_EQ(p.link.sent.size(), 5u) << json(ops(p.link.all())).dump();
    EXPECT_EQ(p.link.sent[2].text,
              R"({"op":"discontinuity","channel":"c","epoch":"e2","serial":0,"reason":"epoch_changed"})");
    EXPECT_EQ(p.link.sent[3].text, message_text("c", 1));
    EXPECT_EQ(p.link.sent[4].text, message_text("c", 2));
    EXPECT_EQ(backplane_.pending_history_count(), 0u) << "serial 1 of a new epoch is no gap";
}

TEST_F(HubTest, DuplicateDeliveriesAreDropped) {
    Peer& p = connected_peer();
    subscribe_live(p, "c", "e1", 3);
    backplane_.deliver_all("c", "e1", {4, 4, 3, 2, 5, 5, 4});
    EXPECT_EQ(message_serials(p.link.take_new()), (Serials{4, 5}));
    EXPECT_EQ(backplane_.pending_history_count(), 0u);
}

TEST_F(HubTest, ResyncReadsHistorySinceTheLastSerialOfEachLiveChannel) {
    Peer& p = connected_peer();
    subscribe_live(p, "a", "e1", 3, 2);
    subscribe_live(p, "b", "e1", 10, 3);
    backplane_.listener->on_resync();
    HistoryCall* ra = backplane_.pending_history("a");
    HistoryCall* rb = backplane_.pending_history("b");
    ASSERT_NE(ra, nullptr);
    ASSERT_NE(rb, nullptr);
    ASSERT_TRUE(ra->request.since && rb->request.since);
    EXPECT_EQ(*ra->request.since, 3u);
    EXPECT_EQ(*rb->request.since, 10u);
    EXPECT_EQ(backplane_.pending_history_count(), 2u);

    backplane_.deliver("a", "e1", 6);  // held while a catches up
    ra->complete(slice("e1", 5, 1, {4, 5}));
    rb->complete(slice("e1", 10, 1));
    auto got = p.link.take_new();
    EXPECT_EQ(message_serials(got, "a"), (Serials{4, 5, 6}));
    EXPECT_EQ(message_serials(got, "b"), Serials{});
    backplane_.deliver("b", "e1", 11);
    EXPECT_EQ(message_serials(p.link.take_new(), "b"), Serials{11});
}

// ---- unsubscribe, detach -------------------------------------------------------------------------------------------

TEST_F(HubTest, UnsubscribeOneOfTwoKeepsTheBackplaneSubscription) {
    Peer& a = connected_peer();
    Peer& b = connected_peer();
    subscribe_live(a, "c", "e1", 3);
    join_live(b, "c");
    const size_t saves = backplane_.saves.size();
    say(a, R"({"op":"unsubscribe","id":5,"channel":"c"})");
    ASSERT_EQ(a.link.take_new().size(), 1u);
    EXPECT_EQ(a.link.sent.back().text, R"({"op":"unsubscribed","id":5,"channel":"c"})");
    EXPECT_TRUE(backplane_.unsubscribes.empty()) << "b still needs the channel";
    EXPECT_EQ(backplane_.saves.size(), saves + 1) << "the session is saved on unsubscribe";
    backplane_.deliver("c", "e1", 4);
    EXPECT_TRUE(a.link.take_new().empty()) << "no deliveries after unsubscribed";
    EXPECT_EQ(message_serials(b.link.take_new()), Serials{4});
}

TEST_F(HubTest, UnsubscribeOfTheLastSubscriberReleasesTheChannel) {
    Peer& p = connected_peer();
    subscribe_live(p, "c", "e1", 3);
    say(p, R"({"op":"unsubscribe","id":5,"channel":"c"})");
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], json::parse(R"({"op":"unsubscribed","id":5,"channel":"c"})"));
    EXPECT_EQ(backplane_.unsubscribes, std::vector<std::string>{"c"});
    EXPECT_EQ(hub().channel_count(), 0u);
    backplane_.deliver("c", "e1", 4);
    EXPECT_TRUE(p.link.take_new().empty());
    say(p, subscribe_cmd(6, "c"));
    EXPECT_EQ(backplane_.subscribes.size(), 2u) << "subscribing again sets delivery up again";
}

TEST_F(HubTest, UnsubscribeDuringAResumeReadIgnoresTheLateAnswer) {
    Peer& a = connected_peer();
    Peer& b = connected_peer();
    subscribe_live(a, "c", "e1", 8);
    say(b, subscribe_since_cmd(3, "c", 5, "e1"));
    HistoryCall* replay = backplane_.pending_history("c");
    ASSERT_NE(replay, nullptr);
    say(b, R"({"op":"unsubscribe","id":4,"channel":"c"})");
    EXPECT_EQ(ops(b.link.take_new()), std::vector<std::string>{"unsubscribed"});
    replay->complete(slice("e1", 8, 1, range(6, 8)));
    EXPECT_TRUE(b.link.take_new().empty());
}

TEST_F(HubTest, DetachSavesTheLastWrittenNotTheLastQueuedSerial) {
    Peer& a = connected_peer();
    Peer& b = connected_peer();  // keeps the channel on the node
    subscribe_live(a, "c", "e1", 3);
    join_live(b, "c");
    backplane_.deliver_all("c", "e1", {4, 5, 6});
    a.link.take_new();
    // a's queue: connected, subscribed, 4, 5, 6. The kernel took everything up to 5.
    ASSERT_EQ(a.link.queued_items(), 5u);
    EXPECT_EQ(a.link.drain(4), 4u);
    const std::string session = a.session;
    hub().detach(*a.state);
    ASSERT_FALSE(backplane_.saves.empty());
    const SaveRequest& saved = backplane_.saves.back().request;
    EXPECT_EQ(saved.session_id, session);
    EXPECT_EQ(saved.ttl_ms, 120'000u);
    ASSERT_EQ(saved.record.positions.size(), 1u);
    EXPECT_EQ(saved.record.positions.at("c"), (StreamPosition{5, "e1"}))
        << "6 was queued but never written: the session may only vouch for 5";
    EXPECT_TRUE(backplane_.unsubscribes.empty());
    backplane_.deliver("c", "e1", 7);
    EXPECT_EQ(message_serials(b.link.take_new()), (Serials{4, 5, 6, 7}));
}

TEST_F(HubTest, DetachOfTheLastSubscriberReleasesTheChannel) {
    Peer& p = connected_peer();
    subscribe_live(p, "c", "e1", 3);
    hub().detach(*p.state);
    EXPECT_EQ(backplane_.unsubscribes, std::vector<std::string>{"c"});
    EXPECT_EQ(hub().channel_count(), 0u);
}

TEST_F(HubTest, DetachWhileACallIsPendingDropsTheLateReply) {
    Peer& p = connected_peer();
    say(p, R"({"op":"publish","id":4,"channel":"c","data":1})");
    say(p, R"({"op":"history","id":5,"channel":"c"})");
    hub().detach(*p.state);
    const size_t sent = p.link.sent.size();
    backplane_.publishes[0].complete(PublishOutcome{1, "e1", false});
    backplane_.histories[0].complete(slice("e1", 1, 1, {1}));
    EXPECT_EQ(p.link.sent.size(), sent);
}

TEST_F(HubTest, SweepSavesAMovingSessionAtMostOncePerSyncInterval) {
    Peer& p = connected_peer();
    subscribe_live(p, "c", "e1", 3);
    const size_t saves = backplane_.saves.size();
    backplane_.deliver("c", "e1", 4);
    p.link.drain();
    host_.now += 500;
    hub().sweep();
    EXPECT_EQ(backplane_.saves.size(), saves) << "less than session_sync_interval since the last save";
    host_.now += 500;
    hub().sweep();
    ASSERT_EQ(backplane_.saves.size(), saves + 1);
    EXPECT_EQ(backplane_.saves.back().request.record.positions.at("c"), (StreamPosition{4, "e1"}));
    host_.now += 1000;
    hub().sweep();
    EXPECT_EQ(backplane_.saves.size(), saves + 1) << "nothing moved: no save before ttl/3";
}

// ---- sessions ------------------------------------------------------------------------------------------------------

TEST_F(HubTest, ConnectWithAKnownSessionResumesItsSubscriptions) {
    const std::string session = "0123456789abcdef0123456789abcdef";
    Peer& p = attach();
    say(p, R"({"op":"connect","id":1,"session":")" + session +
               R"(","positions":{"b":{"serial":4,"epoch":"e1"},"x":{"serial":1,"epoch":"e1"}}})");
    ASSERT_EQ(backplane_.loads.size(), 1u);
    EXPECT_EQ(backplane_.loads[0].request, session);
    EXPECT_TRUE(p.link.paused) << "commands pipelined behind connect wait for the session";
    EXPECT_TRUE(p.link.take_new().empty());

    SessionRecord record{"", {{"a", StreamPosition{3, "e1"}}, {"b", StreamPosition{7, "e1"}}}};
    backplane_.loads[0].complete(std::optional<SessionRecord>(record));
    EXPECT_FALSE(p.link.paused) << "reading resumes once the session is loaded";
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(p.link.sent[0].text, R"({"op":"connected","id":1,"session":")" + session +
                                       R"(","node":"n1","heartbeat":25,"resumed":true})");

    ASSERT_EQ(backplane_.subscribes.size(), 2u) << "x was not in the session: positions do not add channels";
    for (auto& s : backplane_.subscribes) s.complete(Unit{});
    backplane_.pending_history("a")->complete(slice("e1", 9, 1));
    backplane_.pending_history("b")->complete(slice("e1", 9, 1));
    HistoryCall* ra = backplane_.pending_history("a");
    HistoryCall* rb = backplane_.pending_history("b");
    ASSERT_TRUE(ra && rb);
    ASSERT_TRUE(ra->request.since && rb->request.since);
    EXPECT_EQ(*ra->request.since, 3u) << "from the session record";
    EXPECT_EQ(*rb->request.since, 4u) << "connect.positions take precedence over the record";
    ra->complete(slice("e1", 9, 1, range(4, 9)));
    rb->complete(slice("e1", 9, 1, range(5, 9)));

    got = p.link.take_new();
    std::vector<json> subscribed;
    for (const auto& j : got)
        if (j["op"] == "subscribed") subscribed.push_back(j);
    ASSERT_EQ(subscribed.size(), 2u);
    EXPECT_EQ(subscribed[0], json::parse(
                                 R"({"op":"subscribed","channel":"a","serial":9,"epoch":"e1","resumed":true,"replayed":6})"));
    EXPECT_EQ(subscribed[1], json::parse(
                                 R"({"op":"subscribed","channel":"b","serial":9,"epoch":"e1","resumed":true,"replayed":5})"));
    EXPECT_EQ(message_serials(got, "a"), range(4, 9));
    EXPECT_EQ(message_serials(got, "b"), range(5, 9));
    ASSERT_FALSE(backplane_.saves.empty());
    EXPECT_EQ(backplane_.saves.back().request.session_id, session);
}

TEST_F(HubTest, ConnectWithAnUnknownSessionGetsANewOne) {
    const std::string session = "0123456789abcdef0123456789abcdef";
    Peer& p = attach();
    say(p, R"({"op":"connect","id":1,"session":")" + session + R"("})");
    ASSERT_EQ(backplane_.loads.size(), 1u);
    EXPECT_TRUE(p.link.paused);
    backplane_.loads[0].complete(std::optional<SessionRecord>());
    EXPECT_FALSE(p.link.paused);
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0]["op"], "connected");
    EXPECT_EQ(got[0]["resumed"], false);
    const std::string fresh = got[0].value("session", "");
    EXPECT_NE(fresh, session);
    EXPECT_TRUE(is_session_id(fresh)) << fresh;
    EXPECT_TRUE(backplane_.subscribes.empty());
    ASSERT_FALSE(backplane_.saves.empty());
    EXPECT_EQ(backplane_.saves.back().request.session_id, fresh);
}

TEST_F(HubTest, SessionStoreDownFailsTheConnectAndResumesReading) {
    Peer& p = attach();
    say(p, R"({"op":"connect","id":1,"session":"abc"})");
    backplane_.loads[0].fail_unavailable();
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0]["code"], "unavailable");
    EXPECT_EQ(got[0]["id"], 1);
    EXPECT_FALSE(p.link.paused);
    say(p, R"({"op":"connect","id":2})");
    EXPECT_EQ(p.link.take_new().at(0)["op"], "connected") << "the client may try connect again";
}

// ---- publish, history ----------------------------------------------------------------------------------------------

TEST_F(HubTest, PublishUsesTheNamespaceRetentionAndRepliesWithTheSerial) {
    config_.namespaces["chat"] = RetentionPolicy{10, 5'000};
    Peer& p = connected_peer();
    say(p, R"({"op":"publish","id":4,"channel":"chat:room","data":{"x":1},"key":"k1"})");
    say(p, R"({"op":"publish","id":5,"channel":"plain","data":[1]})");
    ASSERT_EQ(backplane_.publishes.size(), 2u);
    const PublishRequest& r = backplane_.publishes[0].request;
    EXPECT_EQ(r.channel, "chat:room");
    EXPECT_EQ(r.data, R"({"x":1})");
    EXPECT_EQ(r.idempotency_key, std::optional<std::string>("k1"));
    EXPECT_EQ(r.retention.max_messages, 10u);
    EXPECT_EQ(r.retention.ttl_ms, 5'000u);
    EXPECT_EQ(r.published_at_us, host_.wall);
    const PublishRequest& plain = backplane_.publishes[1].request;
    EXPECT_EQ(plain.retention.max_messages, 1000u);
    EXPECT_EQ(plain.retention.ttl_ms, 300'000u);
    EXPECT_FALSE(plain.idempotency_key.has_value());

    EXPECT_TRUE(p.link.take_new().empty()) << "the reply waits for the backplane";
    backplane_.publishes[1].complete(PublishOutcome{3, "e9", false});
    backplane_.publishes[0].complete(PublishOutcome{46, "e1", false});
    ASSERT_EQ(p.link.sent.size(), 3u);
    EXPECT_EQ(p.link.sent[1].text, R"({"op":"published","id":5,"channel":"plain","serial":3})");
    EXPECT_EQ(p.link.sent[2].text, R"({"op":"published","id":4,"channel":"chat:room","serial":46})");
}

TEST_F(HubTest, PublishWhenTheBackplaneIsUnavailableIsAnError) {
    Peer& p = connected_peer();
    say(p, R"({"op":"publish","id":4,"channel":"c","data":1})");
    backplane_.publishes[0].fail_unavailable();
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0]["op"], "error");
    EXPECT_EQ(got[0]["code"], "unavailable");
    EXPECT_EQ(got[0]["id"], 4);
    EXPECT_TRUE(p.link.open);
}

TEST_F(HubTest, PublishDisabledRefusesClientPublish) {
    config_.client_publish = false;
    Peer& p = connected_peer();
    say(p, R"({"op":"publish","id":4,"channel":"c","data":1})");
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0]["code"], "publish_disabled");
    EXPECT_EQ(got[0]["id"], 4);
    EXPECT_TRUE(backplane_.publishes.empty());
}

TEST_F(HubTest, HistoryCommandDefaultsAndCaps) {
    config_.namespaces["small"] = RetentionPolicy{50, 1'000};
    Peer& p = connected_peer();
    say(p, R"({"op":"history","id":5,"channel":"c"})");
    say(p, R"({"op":"history","id":6,"channel":"c","limit":5000})");
    say(p, R"({"op":"history","id":7,"channel":"small:x"})");
    say(p, R"({"op":"history","id":8,"channel":"c","since":3,"limit":2})");
    ASSERT_EQ(backplane_.histories.size(), 4u);

    const HistoryRequest& newest = backplane_.histories[0].request;
    EXPECT_EQ(newest.channel, "c");
    EXPECT_FALSE(newest.since.has_value());
    EXPECT_TRUE(newest.newest) << "since absent: the newest `limit` messages";
    EXPECT_EQ(newest.limit, std::optional<uint64_t>(100));
    EXPECT_EQ(newest.retention.max_messages, 1000u);
    EXPECT_EQ(backplane_.histories[1].request.limit, std::optional<uint64_t>(1000)) << "capped by configuration";
    EXPECT_EQ(backplane_.histories[2].request.limit, std::optional<uint64_t>(50))
        << "capped at the channel's history size";
    EXPECT_EQ(backplane_.histories[2].request.retention.max_messages, 50u);
    const HistoryRequest& since = backplane_.histories[3].request;
    EXPECT_EQ(since.since, std::optional<uint64_t>(3));
    EXPECT_FALSE(since.newest);
    EXPECT_EQ(since.limit, std::optional<uint64_t>(2));

    backplane_.histories[0].complete(slice("e1", 9, 1, {8, 9}));
    backplane_.histories[1].fail_unavailable();
    ASSERT_EQ(p.link.sent.size(), 3u);
    EXPECT_EQ(p.link.sent[1].text,
              R"({"op":"history","id":5,"channel":"c","epoch":"e1","serial":9,)"
              R"("messages":[{"serial":8,"data":{"n":8}},{"serial":9,"data":{"n":9}}]})");
    EXPECT_EQ(p.link.sent[2].json["code"], "unavailable");
    EXPECT_EQ(p.link.sent[2].json["id"], 6);
    EXPECT_EQ(hub().channel_count(), 0u) << "a history read does not subscribe the node";
}

// ---- paced replay ----------------------------------------------------------------------------------------------------

class HubPacedReplayTest : public HubTest {
protected:
    static constexpr uint64_t kLimit = 1024;

    HubPacedReplayTest() { config_.outbound_limit = kLimit; }

    // A connected peer (queue drained) whose subscribe since 10 is answered with serials 11..60.
    Peer& resume_fifty() {
        Peer& p = connected_peer(kLimit);
        p.link.drain();
        say(p, subscribe_since_cmd(2, "c", 10, "e1"));
        backplane_.subscribes[0].complete(Unit{});
        backplane_.pending_history("c")->complete(slice("e1", 60, 1));
        HistoryCall* replay = backplane_.pending_history("c");
        EXPECT_NE(replay, nullptr);
        if (replay) replay->complete(slice("e1", 60, 1, range(11, 60)));
        return p;
    }
};

TEST_F(HubPacedReplayTest, ReplayIsQueuedInChunksAsTheLinkDrainsThenHeldLiveFramesFollow) {
    Peer& p = resume_fifty();
    auto got = p.link.take_new();
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got[0]["op"], "subscribed");
    EXPECT_EQ(got[0]["replayed"], 50);
    size_t queued_first = message_serials(got).size();
    EXPECT_GT(queued_first, 0u);
    EXPECT_LT(queued_first, 50u) << "a 50-message replay must not be queued at once past the limit";

    backplane_.deliver_all("c", "e1", {61, 62});  // live, during the replay
    Serials all = message_serials(got);
    int chunks = 1;
    for (int turn = 0; turn < 100 && all.size() < 52 && p.link.open; ++turn) {
        p.link.drain();
        hub().on_writable(*p.state);
        auto more = message_serials(p.link.take_new());
        if (!more.empty()) ++chunks;
        all.insert(all.end(), more.begin(), more.end());
    }
    EXPECT_TRUE(p.link.open) << "closed as " << (p.link.closed_with ? error_info(*p.link.closed_with).code : "");
    EXPECT_GT(chunks, 2);
    EXPECT_EQ(all, range(11, 62)) << "replay 11..60 in order, then the held live 61, 62";
    backplane_.deliver("c", "e1", 63);
    EXPECT_EQ(message_serials(p.link.take_new()), Serials{63});
}

TEST_F(HubPacedReplayTest, ReplayNeverQueuesMoreThanHalfTheOutboundLimit) {
    Peer& p = resume_fifty();
    std::vector<uint64_t> queued_after_pump{p.link.queued_bytes()};
    for (int turn = 0; turn < 100 && message_serials(p.link.all()).size() < 50 && p.link.open; ++turn) {
        p.link.drain();
        hub().on_writable(*p.state);
        queued_after_pump.push_back(p.link.queued_bytes());
    }
    EXPECT_EQ(message_serials(p.link.all()), range(11, 60));
    for (size_t i = 0; i < queued_after_pump.size(); ++i)
        EXPECT_LE(queued_after_pump[i], kLimit / 2) << "replay chunk " << i << " queued " << queued_after_pump[i]
                                                    << " bytes; the replay budget is outbound_limit/2 = " << kLimit / 2;
}

TEST_F(HubPacedReplayTest, ReplayOfALargeMessageDoesNotMakeTheClientASlowConsumer) {
    config_.max_message_size = kLimit;  // Config guarantees outbound_limit >= max_message_size
    Peer& p = connected_peer(kLimit);
    p.link.drain();
    say(p, subscribe_since_cmd(2, "c", 10, "e1"));
    backplane_.subscribes[0].complete(Unit{});
    backplane_.pending_history("c")->complete(slice("e1", 17, 1));
    HistorySlice answer = slice("e1", 17, 1, range(11, 16));
    answer.messages.push_back(StoredMessage{17, "\"" + std::string(900, 'x') + "\"", 0});  // a legal ~0.9 KiB message
    HistoryCall* replay = backplane_.pending_history("c");
    ASSERT_NE(replay, nullptr);
    replay->complete(answer);
    for (int turn = 0; turn < 20 && p.link.open && message_serials(p.link.all()).size() < 7; ++turn) {
        p.link.drain();
        hub().on_writable(*p.state);
    }
    EXPECT_TRUE(p.link.open) << "the replay itself asked to queue " << p.link.max_attempted
                             << " bytes, over outbound_limit " << kLimit << ": closed as "
                             << (p.link.closed_with ? error_info(*p.link.closed_with).code : "");
    EXPECT_EQ(message_serials(p.link.all()), range(11, 17));
}

TEST_F(HubPacedReplayTest, LiveFramesHeldDuringTheReplayAreNotFlushedPastTheLimit) {
    Peer& p = resume_fifty();
    // Twelve live messages (~720 bytes) arrive while the replay is paced: under the held limit (1024) on their own.
    backplane_.deliver_all("c", "e1", range(61, 72));
    EXPECT_TRUE(p.link.open);
    for (int turn = 0; turn < 100 && p.link.open && message_serials(p.link.all()).size() < 62; ++turn) {
        p.link.drain();
        hub().on_writable(*p.state);
    }
    EXPECT_TRUE(p.link.open) << "at the end of the replay the hub asked to queue " << p.link.max_attempted
                             << " bytes, over outbound_limit " << kLimit << ": closed as "
                             << (p.link.closed_with ? error_info(*p.link.closed_with).code : "");
    EXPECT_EQ(message_serials(p.link.all()), range(11, 72));
}

}  // namespace
}  // namespace herald::testing
