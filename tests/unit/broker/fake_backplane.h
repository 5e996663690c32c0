// A Backplane for hub tests: records every call with its callback, so a test completes calls in any order with any
// result, and pushes deliveries (in order, out of order, duplicated, across epochs) straight to the listener.
#pragma once
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "backplane/backplane.h"

namespace herald::testing {

// A recorded call: the request and the callback the hub is waiting on. complete() runs the callback once.
template <typename Request, typename Value>
struct PendingCall {
    Request request;
    BackplaneCallback<Value> done;
    bool completed = false;

    void complete(Result<Value, BackplaneError> result) {
        ASSERT_FALSE(completed) << "the call was already completed";
        completed = true;
        // Moved out first: the callback may issue new calls, and must not run twice.
        auto callback = std::move(done);
        callback(std::move(result));
    }
    void fail_unavailable(std::string detail = "backplane down") {
        complete(fail(BackplaneError{BackplaneErrorKind::Unavailable, std::move(detail)}));
    }
};

struct SaveRequest {
    std::string session_id;
    SessionRecord record;
    uint64_t ttl_ms = 0;
};

using PublishCall = PendingCall<PublishRequest, PublishOutcome>;
using HistoryCall = PendingCall<HistoryRequest, HistorySlice>;
using SubscribeCall = PendingCall<std::string, Unit>;
using SaveCall = PendingCall<SaveRequest, Unit>;
using LoadCall = PendingCall<std::string, std::optional<SessionRecord>>;

inline StoredMessage stored(uint64_t serial) {
    return StoredMessage{serial, "{\"n\":" + std::to_string(serial) + "}", 1'000 + serial};
}

// A history answer: `serials` become messages with the data stored(serial) gives them.
inline HistorySlice slice(std::string epoch, uint64_t top, uint64_t oldest, std::vector<uint64_t> serials = {}) {
    HistorySlice s{std::move(epoch), top, oldest, {}};
    for (uint64_t serial : serials) s.messages.push_back(stored(serial));
    return s;
}

inline std::vector<uint64_t> range(uint64_t first, uint64_t last) {
    std::vector<uint64_t> out;
    for (uint64_t s = first; s <= last; ++s) out.push_back(s);
    return out;
}

class FakeBackplane final : public Backplane {
public:
    // deques: a callback may add calls while a test holds a reference to an earlier one.
    std::deque<PublishCall> publishes;
    std::deque<HistoryCall> histories;
    std::deque<SubscribeCall> subscribes;
    std::vector<std::string> unsubscribes;
    std::deque<SaveCall> saves;
    std::deque<LoadCall> loads;
    BackplaneListener* listener = nullptr;
    bool up = true;

    void set_listener(BackplaneListener* l) override { listener = l; }
    bool available() const override { return up; }
    std::string kind() const override { return "fake"; }

    void publish(PublishRequest request, BackplaneCallback<PublishOutcome> done) override {
        publishes.push_back({std::move(request), std::move(done)});
    }
    void history(HistoryRequest request, BackplaneCallback<HistorySlice> done) override {
        histories.push_back({std::move(request), std::move(done)});
    }
    void subscribe(const std::string& channel, BackplaneCallback<Unit> ready) override {
        subscribes.push_back({channel, std::move(ready)});
    }
    void unsubscribe(const std::string& channel) override { unsubscribes.push_back(channel); }
    void save_session(const std::string& session_id, SessionRecord record, uint64_t ttl_ms,
                      BackplaneCallback<Unit> done) override {
        saves.push_back({SaveRequest{session_id, std::move(record), ttl_ms}, std::move(done)});
    }
    void load_session(const std::string& session_id, BackplaneCallback<std::optional<SessionRecord>> done) override {
        loads.push_back({session_id, std::move(done)});
    }
    void close(std::function<void()> done) override { done(); }

    // Pushes one delivery to the listener, as a backplane would from its loop.
    void deliver(const std::string& channel, const std::string& epoch, uint64_t serial) {
        ASSERT_NE(listener, nullptr) << "no listener registered";
        listener->on_delivery(Delivery{channel, epoch, stored(serial)});
    }
    void deliver_all(const std::string& channel, const std::string& epoch, const std::vector<uint64_t>& serials) {
        for (uint64_t s : serials) deliver(channel, epoch, s);
    }

    // The newest history call for a channel that is not completed yet, or nullptr.
    HistoryCall* pending_history(const std::string& channel) {
        for (auto it = histories.rbegin(); it != histories.rend(); ++it)
            if (!it->completed && it->request.channel == channel) return &*it;
        return nullptr;
    }
    size_t pending_history_count() const {
        size_t n = 0;
        for (const auto& h : histories) n += h.completed ? 0 : 1;
        return n;
    }
    SubscribeCall* pending_subscribe(const std::string& channel) {
        for (auto& s : subscribes)
            if (!s.completed && s.request == channel) return &s;
        return nullptr;
    }
};

}  // namespace herald::testing
