// The hub's authentication and abuse limits against fake links and a hand-driven clock: refusals and 4001,
// capabilities per operation, token expiry and refresh, sessions bound to their subject, the command rate limit
// with its 4029 close, and --max-subscriptions. Tokens are minted with OpenSSL's HMAC (token_minter.h).
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/unit/broker/hub_fixture.h"
#include "tests/unit/broker/token_minter.h"

namespace herald::testing {
namespace {

class HubAuthTest : public HubTest {
protected:
    HubAuthTest() {
        config_.jwt_secret = kTestJwtSecret;
        config_.jwt_refresh_grace_s = 30;
    }

    int64_t now_unix() const { return static_cast<int64_t>(host_.wall / 1'000'000); }

    std::string connect_cmd(const std::string& token, int id = 1) {
        return R"({"op":"connect","id":)" + std::to_string(id) + R"(,"token":")" + token + R"("})";
    }

    // A peer connected with a token for `subject` (expiring in `ttl_s`) and `caps`; its reply is consumed.
    Peer& peer_as(const std::string& subject, const json& caps = nullptr, int64_t ttl_s = 3600) {
        Peer& p = attach();
        say(p, connect_cmd(token_for(subject, now_unix() + ttl_s, caps)));
        auto got = p.link.take_new();
        EXPECT_EQ(got.size(), 1u);
        if (!got.empty()) {
            EXPECT_EQ(got[0]["op"], "connected") << got[0];
            p.session = got[0].value("session", "");
        }
        return p;
    }

    void advance_s(int64_t seconds) {
        host_.now += static_cast<uint64_t>(seconds) * 1000;
        host_.wall += static_cast<uint64_t>(seconds) * 1'000'000;
    }

    double metric(const std::string& family, const std::string& label) {
        const std::string text = metrics_.serialize();
        const std::string needle = family + "{" + label + "} ";
        const size_t at = text.find(needle);
        return at == std::string::npos ? 0 : std::stod(text.substr(at + needle.size()));
    }

    static void expect_refused(Peer& p, int id, const std::string& message_part) {
        auto got = p.link.take_new();
        ASSERT_EQ(got.size(), 1u) << "one error, then the close";
        EXPECT_EQ(got[0]["op"], "error") << got[0];
        EXPECT_EQ(got[0]["code"], "unauthorized") << got[0];
        EXPECT_EQ(got[0]["id"], id) << got[0];
        EXPECT_NE(got[0].value("message", "").find(message_part), std::string::npos) << got[0];
        EXPECT_FALSE(p.link.open);
        EXPECT_EQ(p.link.closed_with, ProtocolError::Unauthorized);
        EXPECT_EQ(error_info(ProtocolError::Unauthorized).close_code, CloseCode::Unauthorized);
    }

    static json error_of(const std::vector<json>& got) {
        EXPECT_EQ(got.size(), 1u);
        return got.empty() ? json() : got[0];
    }
};

// ---- connect ------------------------------------------------------------------------------------------------------

TEST_F(HubAuthTest, ConnectWithoutATokenIsUnauthorizedAndClosed) {
    Peer& p = attach();
    say(p, R"({"op":"connect","id":1})");
    expect_refused(p, 1, "token");
    EXPECT_TRUE(backplane_.saves.empty()) << "no session for a refused client";
    EXPECT_EQ(metric("herald_auth_failures_total", "reason=\"missing_token\""), 1);
}

TEST_F(HubAuthTest, ConnectWithAnInvalidTokenIsUnauthorizedAndClosed) {
    struct Case {
        const char* name;
        std::string token;
        const char* message;
    };
    const int64_t now = now_unix();
    const std::vector<Case> cases = {
        {"wrong signature", mint_hs256({{"sub", "a"}, {"exp", now + 60}}, "another-secret-0123456789abcdef-0123"),
         "signature"},
        {"expired", token_for("a", now - 3600), "expired"},
        {"not yet valid", mint_hs256({{"sub", "a"}, {"exp", now + 7200}, {"nbf", now + 3600}}), "not valid yet"},
        {"alg none", mint_hs256({{"sub", "a"}, {"exp", now + 60}}, kTestJwtSecret, {{"alg", "none"}}), "algorithm"},
        {"garbage", "not-a-token", "malformed"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        Peer& p = attach();
        say(p, connect_cmd(c.token, 7));
        expect_refused(p, 7, c.message);
    }
    EXPECT_TRUE(backplane_.saves.empty());
}

TEST_F(HubAuthTest, AnonymousClientsGetTheAnonymousCapabilities) {
    config_.allow_anonymous = true;
    config_.anonymous_capabilities = R"({"public:*":["subscribe","history"]})";
    Peer& p = attach();
    say(p, R"({"op":"connect","id":1})");
    ASSERT_EQ(p.link.take_new().at(0)["op"], "connected");
    EXPECT_TRUE(p.link.open);
    say(p, subscribe_cmd(2, "public:news"));
    EXPECT_EQ(backplane_.subscribes.size(), 1u) << "allowed: the subscription starts";
    say(p, subscribe_cmd(3, "private:x"));
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0]["code"], "forbidden");
    EXPECT_EQ(got[0]["id"], 3);
    say(p, R"({"op":"publish","id":4,"channel":"public:news","data":1})");
    EXPECT_EQ(error_of(p.link.take_new())["code"], "forbidden");
    EXPECT_TRUE(p.link.open);
}

TEST_F(HubAuthTest, OpenModeIgnoresTokensAndAllowsEverything) {
    config_.jwt_secret.clear();
    Peer& p = attach();
    say(p, connect_cmd("whatever"));
    ASSERT_EQ(p.link.take_new().at(0)["op"], "connected");
    say(p, R"({"op":"publish","id":2,"channel":"any:thing","data":1})");
    EXPECT_EQ(backplane_.publishes.size(), 1u);
    say(p, R"({"op":"refresh","id":3,"token":"whatever"})");
    EXPECT_EQ(p.link.take_new().at(0), json::parse(R"({"op":"refreshed","id":3,"expires":0})"));
    advance_s(100'000);
    hub().sweep();
    EXPECT_TRUE(p.link.open) << "nothing expires without a token";
}

// ---- capabilities -------------------------------------------------------------------------------------------------

TEST_F(HubAuthTest, EachOperationNeedsItsCapability) {
    Peer& p = peer_as("alice", {{"chat:*", {"subscribe"}}, {"chat:lobby", {"publish", "history"}}});
    say(p, subscribe_cmd(2, "chat:room1"));
    EXPECT_EQ(backplane_.subscribes.size(), 1u);
    say(p, subscribe_cmd(3, "news"));
    EXPECT_EQ(error_of(p.link.take_new())["code"], "forbidden");
    say(p, R"({"op":"publish","id":4,"channel":"chat:room1","data":1})");
    json e = error_of(p.link.take_new());
    EXPECT_EQ(e["code"], "forbidden");
    EXPECT_EQ(e["id"], 4);
    say(p, R"({"op":"history","id":5,"channel":"chat:room1"})");
    EXPECT_EQ(error_of(p.link.take_new())["code"], "forbidden");
    say(p, R"({"op":"publish","id":6,"channel":"chat:lobby","data":1})");
    say(p, R"({"op":"history","id":7,"channel":"chat:lobby"})");
    EXPECT_EQ(backplane_.publishes.size(), 1u);
    EXPECT_EQ(backplane_.histories.size(), 1u);
    EXPECT_TRUE(p.link.take_new().empty()) << "allowed commands wait for the backplane";
    EXPECT_TRUE(p.link.open) << "forbidden never closes the connection";
}

TEST_F(HubAuthTest, SubjectPatternsAndDefaultCapabilities) {
    config_.default_capabilities = R"({"user:{sub}":["*"],"user:{sub}:*":["subscribe"]})";
    Peer& p = peer_as("alice");  // no caps claim: the defaults apply
    say(p, subscribe_cmd(2, "user:alice"));
    say(p, subscribe_cmd(3, "user:alice:inbox"));
    EXPECT_EQ(backplane_.subscribes.size(), 2u);
    say(p, subscribe_cmd(4, "user:bob"));
    EXPECT_EQ(error_of(p.link.take_new())["code"], "forbidden");
    say(p, subscribe_cmd(5, "user:alicex"));
    EXPECT_EQ(error_of(p.link.take_new())["code"], "forbidden");
}

// ---- expiry and refresh -------------------------------------------------------------------------------------------

TEST_F(HubAuthTest, ExpiryWarnsThenARefreshInTimeKeepsTheConnection) {
    Peer& p = peer_as("alice", {{"*", {"*"}}}, 60);
    subscribe_live(p, "c", "e1", 0);
    advance_s(59);
    hub().sweep();
    EXPECT_TRUE(p.link.take_new().empty()) << "not expired yet";
    advance_s(1);
    hub().sweep();
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], json::parse(R"({"op":"error","code":"token_expired","message":")" +
                                  std::string(error_info(ProtocolError::TokenExpired).message) + "\"}"));
    hub().sweep();
    EXPECT_TRUE(p.link.take_new().empty()) << "warned once";
    advance_s(29);
    hub().sweep();
    EXPECT_TRUE(p.link.open) << "inside the grace";
    const int64_t exp = now_unix() + 3600;
    say(p, R"({"op":"refresh","id":9,"token":")" + token_for("alice", exp, {{"*", {"*"}}}) + "\"}");
    EXPECT_EQ(p.link.take_new().at(0), json::parse(R"({"op":"refreshed","id":9,"expires":)" + std::to_string(exp) + "}"));
    advance_s(60);
    hub().sweep();
    EXPECT_TRUE(p.link.open) << "the grace ended with the refresh";
    EXPECT_TRUE(p.link.take_new().empty());
    backplane_.deliver("c", "e1", 1);
    EXPECT_EQ(message_serials(p.link.take_new()), Serials{1}) << "the subscription survived";
    EXPECT_EQ(metric("herald_token_events_total", "event=\"refreshed\""), 1);
}

TEST_F(HubAuthTest, NoRefreshWithinTheGraceClosesWith4001) {
    Peer& p = peer_as("alice", {{"*", {"*"}}}, 10);
    advance_s(10);
    hub().sweep();
    EXPECT_EQ(error_of(p.link.take_new())["code"], "token_expired");
    advance_s(30);
    hub().sweep();
    EXPECT_FALSE(p.link.open);
    EXPECT_EQ(p.link.closed_with, ProtocolError::Unauthorized);
    EXPECT_EQ(metric("herald_token_events_total", "event=\"refresh_timeout\""), 1);
}

TEST_F(HubAuthTest, RefreshWithAnotherSubjectIsRefused) {
    Peer& p = peer_as("alice", {{"*", {"*"}}});
    say(p, R"({"op":"refresh","id":4,"token":")" + token_for("mallory", now_unix() + 3600, {{"*", {"*"}}}) + "\"}");
    expect_refused(p, 4, "subject");
    EXPECT_EQ(metric("herald_auth_failures_total", "reason=\"subject_changed\""), 1);
}

TEST_F(HubAuthTest, RefreshWithABadTokenIsRefused) {
    Peer& p = peer_as("alice", {{"*", {"*"}}});
    say(p, R"({"op":"refresh","id":4,"token":")" + token_for("alice", now_unix() - 3600) + "\"}");
    expect_refused(p, 4, "expired");
}

TEST_F(HubAuthTest, RefreshBeforeConnectIsNotConnected) {
    Peer& p = attach();
    say(p, R"({"op":"refresh","id":2,"token":"x"})");
    EXPECT_EQ(error_of(p.link.take_new())["code"], "not_connected");
    EXPECT_TRUE(p.link.open);
}

TEST_F(HubAuthTest, NarrowerCapabilitiesEndTheSubscriptionsTheyNoLongerAllow) {
    Peer& p = peer_as("alice", {{"a", {"subscribe"}}, {"b", {"subscribe"}}});
    subscribe_live(p, "a", "e1", 0, 2);
    subscribe_live(p, "b", "e1", 0, 3);
    const size_t saves = backplane_.saves.size();
    const int64_t exp = now_unix() + 3600;
    say(p, R"({"op":"refresh","id":4,"token":")" + token_for("alice", exp, {{"a", {"subscribe"}}}) + "\"}");
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0]["op"], "refreshed");
    EXPECT_EQ(got[1], json::parse(R"({"op":"unsubscribed","channel":"b","reason":"forbidden"})"));
    EXPECT_EQ(backplane_.unsubscribes, std::vector<std::string>{"b"});
    ASSERT_GT(backplane_.saves.size(), saves);
    EXPECT_EQ(backplane_.saves.back().request.record.positions.count("b"), 0u) << "the session forgets it too";
    backplane_.deliver("a", "e1", 1);
    EXPECT_EQ(message_serials(p.link.take_new(), "a"), Serials{1});
    say(p, subscribe_cmd(5, "b"));
    EXPECT_EQ(error_of(p.link.take_new())["code"], "forbidden");
}

// ---- sessions bound to their subject ------------------------------------------------------------------------------

TEST_F(HubAuthTest, AnotherSubjectsSessionIsNeverRestored) {
    const std::string session = "0123456789abcdef0123456789abcdef";
    Peer& p = attach();
    say(p, R"({"op":"connect","id":1,"session":")" + session + R"(","token":")" +
               token_for("mallory", now_unix() + 3600, {{"*", {"*"}}}) + "\"}");
    ASSERT_EQ(backplane_.loads.size(), 1u) << "the record is read, then compared";
    backplane_.loads[0].complete(std::optional<SessionRecord>(SessionRecord{"alice", {{"a", {3, "e1"}}}}));
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0]["resumed"], false);
    EXPECT_NE(got[0]["session"], session) << "a fresh session";
    EXPECT_TRUE(backplane_.subscribes.empty()) << "none of alice's channels";
    EXPECT_EQ(backplane_.saves.back().request.record.subject, "mallory");
}

TEST_F(HubAuthTest, OwnSessionIsRestoredExceptChannelsNoLongerAllowed) {
    const std::string session = "0123456789abcdef0123456789abcdef";
    Peer& p = attach();
    say(p, R"({"op":"connect","id":1,"session":")" + session + R"(","token":")" +
               token_for("alice", now_unix() + 3600, {{"a", {"subscribe"}}}) + "\"}");
    backplane_.loads[0].complete(
        std::optional<SessionRecord>(SessionRecord{"alice", {{"a", {3, "e1"}}, {"b", {4, "e1"}}}}));
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0]["resumed"], true);
    EXPECT_EQ(got[0]["session"], session);
    EXPECT_EQ(got[1], json::parse(R"({"op":"unsubscribed","channel":"b","reason":"forbidden"})"));
    ASSERT_EQ(backplane_.subscribes.size(), 1u);
    EXPECT_EQ(backplane_.subscribes[0].request, "a");
    EXPECT_EQ(backplane_.saves.back().request.record.positions.count("b"), 0u);
}

// ---- command rate ---------------------------------------------------------------------------------------------------

class HubRateTest : public HubTest {
protected:
    HubRateTest() {
        config_.client_rate = 10;  // one token per 100 ms
        config_.client_burst = 5;
    }
    void ping(Peer& p, int id) { say(p, R"({"op":"ping","id":)" + std::to_string(id) + "}"); }
};

TEST_F(HubRateTest, ExcessCommandsAreRefusedAndNotExecuted) {
    Peer& p = connected_peer();  // connect took one token
    for (int i = 0; i < 4; ++i) ping(p, 10 + i);
    ping(p, 20);
    say(p, R"({"op":"publish","id":21,"channel":"c","data":1})");
    say(p, "not json");
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 7u);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(got[i]["op"], "pong");
    EXPECT_EQ(got[4], json::parse(R"({"op":"error","id":20,"code":"rate_limited","message":")" +
                                  std::string(error_info(ProtocolError::RateLimited).message) + "\"}"));
    EXPECT_EQ(got[5]["code"], "rate_limited");
    EXPECT_EQ(got[5]["id"], 21) << "the refusal carries the command's id";
    EXPECT_EQ(got[6]["code"], "rate_limited") << "malformed messages count too";
    EXPECT_TRUE(backplane_.publishes.empty()) << "a refused command is not executed";
    host_.now += 100;
    ping(p, 30);
    EXPECT_EQ(p.link.take_new().at(0)["op"], "pong") << "one token after 100 ms";
    EXPECT_TRUE(p.link.open);
}

TEST_F(HubRateTest, TenSecondsOfRefusalsCloseWith4029) {
    config_.client_rate = 0.001;  // practically no refill
    Peer& p = connected_peer();
    for (int i = 0; i < 4; ++i) ping(p, i);
    p.link.take_new();
    for (int second = 0; second < 10; ++second) {  // refused at 0, 1, ..., 9 s
        ping(p, 10 + second);
        EXPECT_EQ(p.link.take_new().at(0)["code"], "rate_limited") << "at " << second << " s";
        host_.now += 1'000;
    }
    EXPECT_TRUE(p.link.open);
    ping(p, 20);  // 10 s after the first refusal
    EXPECT_FALSE(p.link.open);
    EXPECT_EQ(p.link.closed_with, ProtocolError::RateLimitSustained);
    EXPECT_EQ(error_info(ProtocolError::RateLimitSustained).close_code, CloseCode::RateLimited);
    EXPECT_TRUE(p.link.take_new().empty()) << "the close replaces the error";
}

TEST_F(HubRateTest, AFloodAboveTheRateIsClosedEvenThoughSomeCommandsGetThrough) {
    Peer& p = connected_peer();  // 10/s, burst 5
    int pongs = 0, refusals = 0;
    for (int step = 0; step < 600 && p.link.open; ++step) {  // 40/s for up to 15 s
        ping(p, step);
        for (const auto& j : p.link.take_new()) (j["op"] == "pong" ? pongs : refusals) += 1;
        host_.now += 25;
    }
    EXPECT_FALSE(p.link.open);
    EXPECT_EQ(p.link.closed_with, ProtocolError::RateLimitSustained);
    EXPECT_GT(pongs, 90) << "the refill let about 10 commands a second through meanwhile";
    EXPECT_GT(refusals, 250);
}

TEST_F(HubRateTest, APauseInRefusalsStartsANewRun) {
    config_.client_rate = 0.001;
    Peer& p = connected_peer();
    for (int i = 0; i < 4; ++i) ping(p, i);
    for (int second = 0; second <= 5; ++second) {  // refused at 0..5 s
        ping(p, 10);
        host_.now += 1'000;
    }
    host_.now += 2'000;  // a 3 s pause since the last refusal
    for (int second = 0; second < 10; ++second) {  // a new run: refused at 8..17 s
        ping(p, 20);
        host_.now += 1'000;
    }
    EXPECT_TRUE(p.link.open) << "17 s since the first refusal, but the current run is 9 s old";
    ping(p, 30);
    EXPECT_FALSE(p.link.open) << "10 s into the second run";
    EXPECT_EQ(p.link.closed_with, ProtocolError::RateLimitSustained);
}

TEST_F(HubRateTest, ASteadyClientAtTheRateIsNeverRefused) {
    Peer& p = connected_peer();
    for (int step = 0; step < 600; ++step) {  // 60 s at exactly 10/s
        ping(p, step);
        host_.now += 100;
    }
    for (const auto& j : p.link.take_new()) ASSERT_EQ(j["op"], "pong") << j;
    EXPECT_TRUE(p.link.open);
}

TEST_F(HubRateTest, ZeroRateTurnsTheLimitOff) {
    config_.client_rate = 0;
    Peer& p = connected_peer();
    for (int i = 0; i < 1000; ++i) ping(p, i);
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 1000u);
    EXPECT_EQ(got.back()["op"], "pong");
}

// ---- subscriptions per connection ---------------------------------------------------------------------------------

TEST_F(HubTest, MaxSubscriptionsIsLimitExceeded) {
    config_.max_subscriptions = 2;
    Peer& p = connected_peer();
    say(p, subscribe_cmd(2, "a"));
    say(p, subscribe_cmd(3, "b"));
    say(p, subscribe_cmd(4, "c"));
    auto got = p.link.take_new();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0]["code"], "limit_exceeded");
    EXPECT_EQ(got[0]["id"], 4);
    EXPECT_EQ(backplane_.subscribes.size(), 2u);
    say(p, R"({"op":"unsubscribe","id":5,"channel":"a"})");
    say(p, subscribe_cmd(6, "c"));
    EXPECT_EQ(backplane_.subscribes.size(), 3u) << "room again after an unsubscribe";
    EXPECT_TRUE(p.link.open);
}

}  // namespace
}  // namespace herald::testing
