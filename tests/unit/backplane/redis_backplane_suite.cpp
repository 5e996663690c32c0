// The Redis backplane (backplane/redis_backplane.cpp) against a real redis-server: the Redis factory for the one
// contract suite (backplane_contract_test.cpp), and the cases only Redis has — script cache flushes, outages,
// pub/sub reconnects, FLUSHALL, lineage expiry, subscribe batching, the key layout.
//
// Built into backplane_redis_tests (label "redis"), not backplane_tests: that is why this file's name does not end
// in _test.cpp, which the unit suite globs.
#include <algorithm>
#include <chrono>

#include "backplane/redis_backplane.h"
#include "tests/unit/backplane/backplane_contract.h"
#include "tests/unit/backplane/redis_test_server.h"

namespace herald::testing {
namespace {

using Serials = std::vector<uint64_t>;
using Clock = std::chrono::steady_clock;

RedisOptions test_options(uint16_t port) {
    RedisOptions options;
    options.host = "127.0.0.1";
    options.port = port;
    options.connect_timeout_ms = 1000;
    options.command_timeout_ms = 2000;
    options.backoff_base_ms = 20;
    options.backoff_cap_ms = 200;  // a restarted server is found again within a few hundred ms
    return options;
}

// Two nodes on the test loop sharing one redis-server: the process-wide one (FLUSHALLed first), or a private one
// that a test may kill, pause and restart.
class RedisHarness final : public BackplaneHarness {
public:
    RedisHarness(RedisTestServer* shared, std::unique_ptr<RedisTestServer> owned, RedisOptions options)
        : owned_(std::move(owned)), server_(owned_ ? owned_.get() : shared) {
        server_->command({"FLUSHALL"});
        auto log = [this](std::string_view event, std::string_view detail) {
            log_.push_back(std::string(event) + " " + std::string(detail));
        };
        a_ = std::make_unique<RedisBackplane>(loop(), options, log);
        b_ = std::make_unique<RedisBackplane>(loop(), options, log);
        connected_ = run_until([&] { return a_->available() && b_->available(); }, 5000);
        run_for(20);  // let on_availability(true) pass before the test installs its listeners
    }

    bool connected() const { return connected_; }
    Backplane& node(size_t index) override { return index == 0 ? *a_ : *b_; }
    RedisBackplane& redis_node(size_t index) { return index == 0 ? *a_ : *b_; }
    RedisTestServer& server() { return *server_; }
    const std::vector<std::string>& log() const { return log_; }
    bool logged(std::string_view event) const {
        return std::any_of(log_.begin(), log_.end(), [&](const std::string& line) { return line.rfind(event, 0) == 0; });
    }

    void wipe() override { server_->command({"FLUSHALL"}); }
    // Redis keeps real time (its TIME and PX expiry): let it pass, with the loop running.
    void advance_time_ms(uint64_t ms) override { run_for(ms); }

private:
    std::unique_ptr<RedisTestServer> owned_;
    RedisTestServer* server_;
    std::vector<std::string> log_;
    bool connected_ = false;
    std::unique_ptr<RedisBackplane> a_;
    std::unique_ptr<RedisBackplane> b_;
};

std::unique_ptr<BackplaneHarness> make_harness(bool private_server) {
    std::string error;
    std::unique_ptr<RedisTestServer> owned;
    RedisTestServer* shared = nullptr;
    if (private_server) {
        owned = RedisTestServer::start(&error);
    } else {
        shared = RedisTestServer::shared(&error);
    }
    if (!owned && !shared) {
        ADD_FAILURE() << "cannot start redis-server: " << error;
        return nullptr;
    }
    const uint16_t port = owned ? owned->port() : shared->port();
    auto harness = std::make_unique<RedisHarness>(shared, std::move(owned), test_options(port));
    if (!harness->connected()) ADD_FAILURE() << "the nodes did not connect to redis-server on port " << port;
    return harness;
}

BackplaneFactory redis_factory() {
    return {"Redis", [] { return make_harness(false); }};
}

BackplaneFactory redis_private_server_factory() {
    return {"RedisPrivateServer", [] { return make_harness(true); }};
}

// The whole contract suite, against Redis.
INSTANTIATE_TEST_SUITE_P(Redis, BackplaneContractTest, ::testing::Values(redis_factory()), factory_name);

// ---------------------------------------------------------------------------------------------------------------
// Redis-only cases, with the contract fixture's helpers.

class RedisBackplaneTest : public BackplaneContractTest {
protected:
    RedisHarness& redis() { return static_cast<RedisHarness&>(harness()); }
    RedisTestServer& server() { return redis().server(); }
    std::string server_command(const std::vector<std::string>& argv) {
        return server().command(argv).value_or("(unreachable)");
    }
    bool events_contain(size_t n, const std::string& event) {
        const auto& events = listener(n).events;
        return std::find(events.begin(), events.end(), event) != events.end();
    }
};

// Cases that kill, pause or restart the server get one of their own.
class RedisOutageTest : public RedisBackplaneTest {};

INSTANTIATE_TEST_SUITE_P(Redis, RedisBackplaneTest, ::testing::Values(redis_factory()), factory_name);
INSTANTIATE_TEST_SUITE_P(Redis, RedisOutageTest, ::testing::Values(redis_private_server_factory()), factory_name);

TEST_P(RedisBackplaneTest, ScriptCacheFlushFallsBackToEval) {
    ASSERT_EQ(publish(0, "c", "1")->serial, 1u);
    ASSERT_EQ(server_command({"SCRIPT", "FLUSH"}), "OK");
    auto p = publish(0, "c", "2");
    ASSERT_TRUE(p.ok()) << p.error().detail;
    EXPECT_EQ(p->serial, 2u);
    auto h = history(1, "c", std::nullopt, std::nullopt);
    ASSERT_TRUE(h.ok()) << h.error().detail;
    EXPECT_EQ(serials_of(*h), (Serials{1, 2}));
    const auto reloads = [&] {
        return std::count_if(redis().log().begin(), redis().log().end(),
                             [](const std::string& line) { return line.rfind("redis_script_reloaded", 0) == 0; });
    };
    EXPECT_EQ(reloads(), 2) << "one fallback per script";
    // EVAL cached the scripts again: the next calls go by SHA.
    EXPECT_EQ(publish(1, "c", "3")->serial, 3u);
    EXPECT_EQ(history(1, "c", 2, std::nullopt)->messages.size(), 1u);
    EXPECT_EQ(reloads(), 2);
}

TEST_P(RedisBackplaneTest, FlushallStartsANewEpochAtSerialOne) {
    auto first = publish(0, "c", "1");
    ASSERT_TRUE(first.ok());
    ASSERT_EQ(publish(0, "c", "2")->serial, 2u);
    ASSERT_EQ(server_command({"FLUSHALL"}), "OK");
    auto next = publish(1, "c", "3");
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(next->serial, 1u);
    EXPECT_NE(next->epoch, first->epoch);
    EXPECT_EQ(history(0, "c", std::nullopt, 0)->epoch, next->epoch);
}

TEST_P(RedisBackplaneTest, SubscribesOfOneTurnGoOutAsOneCommand) {
    ASSERT_EQ(server_command({"CONFIG", "RESETSTAT"}), "OK");
    constexpr int kChannels = 10;
    int ready = 0;
    for (int i = 0; i < kChannels; ++i) {
        node(0).subscribe("c" + std::to_string(i), [&](BackplaneResult<Unit> r) {
            EXPECT_TRUE(r.ok());
            ++ready;
        });
    }
    ASSERT_TRUE(harness().run_until([&] { return ready == kChannels; }));
    const std::string stats = server_command({"INFO", "commandstats"});
    EXPECT_NE(stats.find("cmdstat_subscribe:calls=1,"), std::string::npos) << stats;

    for (int i = 0; i < kChannels; ++i) node(0).unsubscribe("c" + std::to_string(i));
    ASSERT_TRUE(harness().run_until([&] {
        return server_command({"INFO", "commandstats"}).find("cmdstat_unsubscribe:calls=1,") != std::string::npos;
    }));
    harness().run_for(30);
    EXPECT_NE(server_command({"INFO", "commandstats"}).find("cmdstat_unsubscribe:calls=1,"), std::string::npos);
    EXPECT_EQ(server_command({"PUBSUB", "NUMSUB", "herald:{c0}:pub"}), "herald:{c0}:pub\n0");
}

TEST_P(RedisBackplaneTest, SubscribeAndUnsubscribeInOneTurnSendNothing) {
    ASSERT_TRUE(subscribe(0, "c").ok());
    ASSERT_EQ(server_command({"CONFIG", "RESETSTAT"}), "OK");
    node(0).unsubscribe("c");
    auto again = subscribe(0, "c");  // same turn as the unsubscribe: Redis never stops
    ASSERT_TRUE(again.ok());
    const std::string stats = server_command({"INFO", "commandstats"});
    EXPECT_EQ(stats.find("cmdstat_subscribe:"), std::string::npos) << stats;
    EXPECT_EQ(stats.find("cmdstat_unsubscribe:"), std::string::npos) << stats;
    ASSERT_TRUE(publish(1, "c", "1").ok());
    ASSERT_TRUE(await_deliveries(0, "c", 1));
}

TEST_P(RedisBackplaneTest, KeyLayoutSharesTheChannelsHashTag) {
    ASSERT_TRUE(publish(0, "news", "1", "k1").ok());
    ASSERT_TRUE(save_session(0, "s1", SessionRecord{"alice", {{"news", StreamPosition{1, "e"}}}}, 60'000).ok());
    std::string keys = server_command({"KEYS", "herald:*"});
    std::vector<std::string> names;
    for (size_t start = 0; start <= keys.size();) {
        const size_t end = std::min(keys.find('\n', start), keys.size());
        names.push_back(keys.substr(start, end - start));
        start = end + 1;
    }
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"herald:session:{s1}", "herald:{news}:history",
                                               "herald:{news}:idem:k1", "herald:{news}:meta"}));
    EXPECT_EQ(server_command({"TYPE", "herald:{news}:history"}), "stream");
    EXPECT_EQ(server_command({"HGET", "herald:{news}:meta", "top"}), "1");
    // The lineage outlives the history: 24 h by default, refreshed by every publish and history read.
    const uint64_t meta_ttl = std::stoull(server_command({"PTTL", "herald:{news}:meta"}));
    EXPECT_GT(meta_ttl, 23ull * 3600 * 1000);
    const uint64_t session_ttl = std::stoull(server_command({"PTTL", "herald:session:{s1}"}));
    EXPECT_LE(session_ttl, 60'000u);
    EXPECT_GT(session_ttl, 50'000u);
    const std::string session = server_command({"GET", "herald:session:{s1}"});
    EXPECT_NE(session.find("\"alice\""), std::string::npos) << session;
}

TEST_P(RedisBackplaneTest, DataWithNewlinesSurvivesThePayloadEncoding) {
    ASSERT_TRUE(subscribe(1, "c").ok());
    const std::string data = "{\n  \"text\": \"two\\nlines\"\n}\n";
    ASSERT_TRUE(publish(0, "c", data, std::nullopt, kKeepAll, 42).ok());
    ASSERT_TRUE(await_deliveries(1, "c", 1));
    EXPECT_EQ(listener(1).deliveries[0].message.data, data);
    EXPECT_EQ(listener(1).deliveries[0].message.published_at_us, 42u);
    EXPECT_EQ(history(0, "c", std::nullopt, std::nullopt)->messages.at(0).data, data);
}

TEST_P(RedisBackplaneTest, ExpiredLineageStartsANewEpoch) {
    // A third node whose channel lineage lasts 300 ms: past it, the next touch makes a new epoch (explicit, never a
    // silent restart of serials under the old epoch).
    RedisOptions options = test_options(server().port());
    options.channel_ttl_ms = 300;
    RedisBackplane short_lived(harness().loop(), options);
    ASSERT_TRUE(harness().run_until([&] { return short_lived.available(); }));
    const RetentionPolicy brief{100, 100};
    auto call = [&](auto&& start) {
        std::optional<BackplaneResult<PublishOutcome>> out;
        start([&](BackplaneResult<PublishOutcome> r) { out.emplace(std::move(r)); });
        EXPECT_TRUE(harness().run_until([&] { return out.has_value(); }));
        return out.value_or(fail(BackplaneError{BackplaneErrorKind::Internal, "timeout"}));
    };
    auto publish_short = [&](const std::string& data) {
        return call([&](auto done) {
            short_lived.publish(PublishRequest{"c", data, std::nullopt, brief, 0}, done);
        });
    };
    auto first = publish_short("1");
    ASSERT_TRUE(first.ok());
    ASSERT_EQ(publish_short("2")->serial, 2u);
    harness().run_for(200);
    ASSERT_EQ(publish_short("3")->serial, 3u) << "a publish refreshes the lineage";
    harness().run_for(400);
    auto renewed = publish_short("4");
    ASSERT_TRUE(renewed.ok());
    EXPECT_EQ(renewed->serial, 1u);
    EXPECT_NE(renewed->epoch, first->epoch);

    bool closed = false;
    short_lived.close([&] { closed = true; });
    ASSERT_TRUE(harness().run_until([&] { return closed; }));
}

// ---------------------------------------------------------------------------------------------------------------
// Outages: each case has a server of its own.

TEST_P(RedisOutageTest, KilledServerFailsFastThenRecovers) {
    ASSERT_TRUE(subscribe(1, "c").ok());
    auto before = publish(0, "c", "1");
    ASSERT_TRUE(before.ok());
    ASSERT_TRUE(await_deliveries(1, "c", 1));

    server().kill_hard();
    ASSERT_TRUE(harness().run_until([&] { return events_contain(0, "availability:0"); }));
    EXPECT_FALSE(node(0).available());

    // Publishing into the outage fails at once instead of queueing.
    const auto started = Clock::now();
    auto failed = publish(0, "c", "2");
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().kind, BackplaneErrorKind::Unavailable);
    EXPECT_LT(elapsed.count(), 50) << "publish during an outage took " << elapsed.count() << " ms to fail";
    auto h = history(0, "c", std::nullopt, std::nullopt);
    ASSERT_FALSE(h.ok());
    EXPECT_EQ(h.error().kind, BackplaneErrorKind::Unavailable);
    auto s = save_session(0, "s", SessionRecord{}, 1000);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().kind, BackplaneErrorKind::Unavailable);
    auto l = load_session(0, "s");
    ASSERT_FALSE(l.ok());
    auto sub = subscribe(0, "other");
    ASSERT_FALSE(sub.ok());
    EXPECT_EQ(sub.error().kind, BackplaneErrorKind::Unavailable);
    node(0).unsubscribe("other");

    std::string error;
    ASSERT_TRUE(server().restart(&error)) << error;
    ASSERT_TRUE(harness().run_until([&] { return node(0).available() && node(1).available(); }, 5000));
    ASSERT_TRUE(harness().run_until([&] { return events_contain(0, "availability:1") && listener(1).resyncs == 1; }));
    EXPECT_EQ(listener(0).resyncs, 0u) << "node A had no subscription to lose";

    // The restarted server kept nothing (no persistence): a new epoch, serials from 1, and live delivery resumes.
    auto after = publish(0, "c", "3");
    ASSERT_TRUE(after.ok()) << after.error().detail;
    EXPECT_EQ(after->serial, 1u);
    EXPECT_NE(after->epoch, before->epoch);
    ASSERT_TRUE(await_deliveries(1, "c", 2));
    EXPECT_EQ(listener(1).deliveries.back().epoch, after->epoch);
    const auto& events = listener(1).events;
    const auto down = std::find(events.begin(), events.end(), "availability:0");
    const auto up = std::find(events.begin(), events.end(), "availability:1");
    const auto resync = std::find(events.begin(), events.end(), "resync");
    EXPECT_TRUE(down < up && up < resync && resync != events.end()) << "down, then up, then resync";
}

TEST_P(RedisOutageTest, PubsubConnectionKilledResubscribesAndResyncs) {
    ASSERT_TRUE(subscribe(1, "a").ok());
    ASSERT_TRUE(subscribe(1, "b").ok());
    ASSERT_TRUE(publish(0, "a", "1").ok());
    ASSERT_TRUE(await_deliveries(1, "a", 1));

    EXPECT_EQ(server_command({"CLIENT", "KILL", "TYPE", "pubsub"}), "1");  // only node B's is in pub/sub mode
    ASSERT_TRUE(harness().run_until([&] { return listener(1).resyncs == 1; }));
    EXPECT_EQ(listener(0).resyncs, 0u);
    EXPECT_TRUE(node(1).available());

    ASSERT_TRUE(publish(0, "a", "2").ok());
    ASSERT_TRUE(publish(0, "b", "1").ok());
    ASSERT_TRUE(await_deliveries(1, "a", 2));
    ASSERT_TRUE(await_deliveries(1, "b", 1));
    EXPECT_EQ(listener(1).serials("a"), (Serials{1, 2}));
    harness().run_for(30);
    EXPECT_EQ(listener(1).resyncs, 1u) << "one resync per reconnect";
}

TEST_P(RedisOutageTest, HungServerIsDroppedAfterTheCommandTimeout) {
    // A stopped server keeps its sockets open: only the reply watchdog notices. Replace node A by one with a short
    // command timeout.
    RedisOptions options = test_options(server().port());
    options.command_timeout_ms = 200;
    options.connect_timeout_ms = 200;
    RedisBackplane impatient(harness().loop(), options);
    RecordingListener events;
    impatient.set_listener(&events);
    ASSERT_TRUE(harness().run_until([&] { return impatient.available(); }));

    server().pause();
    std::optional<BackplaneResult<PublishOutcome>> outcome;
    const auto started = Clock::now();
    impatient.publish(PublishRequest{"c", "1", std::nullopt, kKeepAll, 0},
                      [&](BackplaneResult<PublishOutcome> r) { outcome.emplace(std::move(r)); });
    ASSERT_TRUE(harness().run_until([&] { return outcome.has_value(); }));
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    ASSERT_FALSE(outcome->ok());
    EXPECT_EQ(outcome->error().kind, BackplaneErrorKind::Unavailable);
    EXPECT_GE(elapsed, 150);
    EXPECT_LT(elapsed, 1500);
    EXPECT_FALSE(impatient.available());

    server().resume();
    ASSERT_TRUE(harness().run_until([&] { return impatient.available(); }, 5000));
    harness().run_for(10);
    EXPECT_NE(std::find(events.events.begin(), events.events.end(), "availability:0"), events.events.end());
    EXPECT_EQ(events.events.back(), "availability:1");

    bool closed = false;
    impatient.close([&] { closed = true; });
    ASSERT_TRUE(harness().run_until([&] { return closed; }));
}

TEST_P(RedisOutageTest, CloseDuringAnOutageFinishes) {
    server().kill_hard();
    ASSERT_TRUE(harness().run_until([&] { return !node(0).available() && !node(1).available(); }));
    // TearDown closes both nodes while they are reconnecting and checks that the loop is left empty.
}

}  // namespace
}  // namespace herald::testing
