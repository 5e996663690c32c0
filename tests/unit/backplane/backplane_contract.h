// The backplane contract suite's harness: a factory per implementation makes a loop and two nodes that share one
// backplane state; BackplaneContractTest (TEST_P in backplane_contract_test.cpp) runs every case against each.
//
// Adding an implementation = one file with a factory and one line, e.g. in redis_backplane_test.cpp:
//   INSTANTIATE_TEST_SUITE_P(Redis, BackplaneContractTest, ::testing::Values(redis_factory()), factory_name);
// Its cases are then named Redis/BackplaneContractTest.*, which ctest can label apart from the in-memory ones.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <uv.h>

#include "backplane/backplane.h"

namespace herald::testing {

// One test's world. The base owns the loop; an implementation's subclass makes the two nodes on it, which share
// state as two nodes of one cluster would. The fixture closes the nodes before the harness is destroyed.
class BackplaneHarness {
public:
    BackplaneHarness() { uv_loop_init(&loop_); }
    virtual ~BackplaneHarness() {
        // Run the close callbacks still due, then the loop must be empty: a node that leaked a handle fails here.
        uv_run(&loop_, UV_RUN_NOWAIT);
        EXPECT_EQ(uv_loop_close(&loop_), 0) << "a handle is still open on the test loop";
    }
    BackplaneHarness(const BackplaneHarness&) = delete;
    BackplaneHarness& operator=(const BackplaneHarness&) = delete;

    uv_loop_t* loop() { return &loop_; }

    virtual Backplane& node(size_t index) = 0;  // 0 = node A, 1 = node B
    // Loses all shared state (channels, sessions), as a Redis FLUSHDB would; nodes stay subscribed.
    virtual void wipe() = 0;
    // Lets `ms` pass for retention and session TTLs: the in-memory factory moves a fake clock; an implementation
    // with a real clock may sleep (tests keep TTLs at a few hundred ms for that).
    virtual void advance_time_ms(uint64_t ms) = 0;

    // Runs the loop until `done` holds or `timeout_ms` passes; returns whether `done` holds.
    bool run_until(const std::function<bool()>& done, uint64_t timeout_ms = 2000) {
        if (done()) return true;
        struct TimerState {
            bool fired = false;
            bool closed = false;
        } state;
        uv_timer_t timer;
        uv_timer_init(&loop_, &timer);
        timer.data = &state;
        uv_timer_start(&timer, [](uv_timer_t* t) { static_cast<TimerState*>(t->data)->fired = true; }, timeout_ms, 0);
        while (!done() && !state.fired) uv_run(&loop_, UV_RUN_ONCE);
        uv_close(reinterpret_cast<uv_handle_t*>(&timer),
                 [](uv_handle_t* h) { static_cast<TimerState*>(h->data)->closed = true; });
        while (!state.closed) uv_run(&loop_, UV_RUN_NOWAIT);
        return done();
    }
    // Runs the loop for `ms`, e.g. to see that nothing more arrives.
    void run_for(uint64_t ms) {
        run_until([] { return false; }, ms);
    }

protected:
    uv_loop_t loop_;
};

struct BackplaneFactory {
    std::string name;  // the instantiation's case name suffix: letters, digits, '_'
    std::function<std::unique_ptr<BackplaneHarness>()> make;  // fresh, empty shared state each time
};

inline std::string factory_name(const ::testing::TestParamInfo<BackplaneFactory>& info) { return info.param.name; }

// Records what a node's listener receives, in order.
struct RecordingListener final : BackplaneListener {
    std::vector<Delivery> deliveries;
    std::vector<std::string> events;  // "delivery:<channel>:<serial>", "availability:<0|1>", "resync"
    size_t resyncs = 0;
    std::function<void(const Delivery&)> on_each;  // optional hook, runs after recording

    void on_delivery(const Delivery& delivery) override {
        deliveries.push_back(delivery);
        events.push_back("delivery:" + delivery.channel + ":" + std::to_string(delivery.message.serial));
        if (on_each) on_each(delivery);
    }
    void on_availability(bool up) override { events.push_back(up ? "availability:1" : "availability:0"); }
    void on_resync() override {
        ++resyncs;
        events.push_back("resync");
    }

    std::vector<uint64_t> serials(const std::string& channel) const {
        std::vector<uint64_t> out;
        for (const auto& d : deliveries) {
            if (d.channel == channel) out.push_back(d.message.serial);
        }
        return out;
    }
};

template <typename T>
using BackplaneResult = Result<T, BackplaneError>;

class BackplaneContractTest : public ::testing::TestWithParam<BackplaneFactory> {
protected:
    static constexpr uint64_t kTimeoutMs = 2000;
    // Long enough that nothing expires during a test unless the test moves time past it.
    static constexpr RetentionPolicy kKeepAll{1000, 600'000};

    void SetUp() override {
        harness_ = GetParam().make();
        ASSERT_NE(harness_, nullptr);
        for (size_t i = 0; i < 2; ++i) node(i).set_listener(&listeners_[i]);
    }

    void TearDown() override {
        if (!harness_) return;
        for (size_t i = 0; i < 2; ++i) {
            if (!closed_[i]) close_node(i);
        }
        EXPECT_TRUE(harness_->run_until([&] { return closes_done_ == 2; }, kTimeoutMs)) << "close() never finished";
        harness_.reset();
    }

    Backplane& node(size_t i) { return harness_->node(i); }
    RecordingListener& listener(size_t i) { return listeners_[i]; }
    BackplaneHarness& harness() { return *harness_; }

    // Starts closing node i (TearDown closes the nodes a test has not); `then` runs from close's `done`.
    void close_node(size_t i, std::function<void()> then = {}) {
        closed_[i] = true;
        node(i).close([this, then = std::move(then)] {
            ++closes_done_;
            if (then) then();
        });
    }

    // Waits for a callback result; a timeout is a test failure reported as an Internal error.
    template <typename T>
    BackplaneResult<T> await(const std::shared_ptr<std::optional<BackplaneResult<T>>>& slot, const char* what) {
        if (!harness_->run_until([&] { return slot->has_value(); }, kTimeoutMs)) {
            ADD_FAILURE() << what << ": no callback within " << kTimeoutMs << " ms";
            return fail(BackplaneError{BackplaneErrorKind::Internal, "timeout"});
        }
        return std::move(**slot);
    }
    template <typename T>
    static std::pair<std::shared_ptr<std::optional<BackplaneResult<T>>>, BackplaneCallback<T>> slot() {
        auto s = std::make_shared<std::optional<BackplaneResult<T>>>();
        return {s, [s](BackplaneResult<T> r) { s->emplace(std::move(r)); }};
    }

    BackplaneResult<PublishOutcome> publish(size_t n, const std::string& channel, const std::string& data,
                                            std::optional<std::string> key = std::nullopt,
                                            RetentionPolicy retention = kKeepAll, uint64_t published_at_us = 0) {
        auto [s, cb] = slot<PublishOutcome>();
        node(n).publish(PublishRequest{channel, data, std::move(key), retention, published_at_us}, cb);
        return await(s, "publish");
    }

    BackplaneResult<HistorySlice> history(size_t n, const std::string& channel, std::optional<uint64_t> since,
                                          std::optional<uint64_t> limit, bool newest = false,
                                          RetentionPolicy retention = kKeepAll) {
        auto [s, cb] = slot<HistorySlice>();
        node(n).history(HistoryRequest{channel, since, limit, newest, retention}, cb);
        return await(s, "history");
    }

    BackplaneResult<Unit> subscribe(size_t n, const std::string& channel) {
        auto [s, cb] = slot<Unit>();
        node(n).subscribe(channel, cb);
        return await(s, "subscribe ready");
    }

    BackplaneResult<Unit> save_session(size_t n, const std::string& id, SessionRecord record, uint64_t ttl_ms) {
        auto [s, cb] = slot<Unit>();
        node(n).save_session(id, std::move(record), ttl_ms, cb);
        return await(s, "save_session");
    }

    BackplaneResult<std::optional<SessionRecord>> load_session(size_t n, const std::string& id) {
        auto [s, cb] = slot<std::optional<SessionRecord>>();
        node(n).load_session(id, cb);
        return await(s, "load_session");
    }

    // Waits until node n has received `count` deliveries of `channel`.
    bool await_deliveries(size_t n, const std::string& channel, size_t count) {
        return harness_->run_until([&] { return listener(n).serials(channel).size() >= count; }, kTimeoutMs);
    }

    static std::vector<uint64_t> serial_range(uint64_t first, uint64_t last) {
        std::vector<uint64_t> out;
        for (uint64_t s = first; s <= last; ++s) out.push_back(s);
        return out;
    }
    static std::vector<uint64_t> serials_of(const HistorySlice& slice) {
        std::vector<uint64_t> out;
        for (const auto& m : slice.messages) out.push_back(m.serial);
        return out;
    }

private:
    std::unique_ptr<BackplaneHarness> harness_;
    std::array<RecordingListener, 2> listeners_;
    std::array<bool, 2> closed_{false, false};
    int closes_done_ = 0;
};

}  // namespace herald::testing
