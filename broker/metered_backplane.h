// A Backplane decorator that measures the backplane as the broker sees it: each call's round trip, reachability,
// reconnects, resyncs and cross-node lag. main() wraps the chosen backplane in it, so the hub never knows.
//
// It keeps the contract of the backplane it wraps: every callback is the inner backplane's, run when the inner one
// runs it (never synchronously, never after close()); listener events are forwarded as they arrive.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "backplane/backplane.h"
#include "broker/metrics.h"

namespace herald {

// Injected clocks: the broker passes uv_hrtime and the system clock; tests pass counters they move by hand.
struct MeterClocks {
    std::function<uint64_t()> monotonic_ns;  // for call durations
    std::function<uint64_t()> wall_us;       // unix microseconds, compared with a message's published_at_us
};

class MeteredBackplane final : public Backplane, private BackplaneListener {
public:
    // `inner` must outlive this object; it becomes inner's listener until destroyed.
    MeteredBackplane(Backplane& inner, Metrics& metrics, MeterClocks clocks);
    ~MeteredBackplane() override;
    MeteredBackplane(const MeteredBackplane&) = delete;
    MeteredBackplane& operator=(const MeteredBackplane&) = delete;

    void set_listener(BackplaneListener* listener) override { listener_ = listener; }
    bool available() const override { return inner_.available(); }
    std::string kind() const override { return inner_.kind(); }

    void publish(PublishRequest request, BackplaneCallback<PublishOutcome> done) override;
    void history(HistoryRequest request, BackplaneCallback<HistorySlice> done) override;
    void subscribe(const std::string& channel, BackplaneCallback<Unit> ready) override;
    void unsubscribe(const std::string& channel) override { inner_.unsubscribe(channel); }
    void save_session(const std::string& session_id, SessionRecord record, uint64_t ttl_ms,
                      BackplaneCallback<Unit> done) override;
    void load_session(const std::string& session_id,
                      BackplaneCallback<std::optional<SessionRecord>> done) override;
    void close(std::function<void()> done) override { inner_.close(std::move(done)); }

private:
    // BackplaneListener (the inner backplane's events)
    void on_delivery(const Delivery& delivery) override;
    void on_availability(bool up) override;
    void on_resync() override;

    // Wraps `done` so the time from now to its call is observed in `histogram`.
    template <typename T>
    BackplaneCallback<T> timed(prometheus::Histogram& histogram, BackplaneCallback<T> done);

    Backplane& inner_;
    Metrics& metrics_;
    MeterClocks clocks_;
    BackplaneListener* listener_ = nullptr;
    prometheus::Histogram& publish_duration_;
    prometheus::Histogram& history_duration_;
    prometheus::Histogram& subscribe_duration_;
    prometheus::Histogram& save_session_duration_;
    prometheus::Histogram& load_session_duration_;
    bool up_;
    bool ever_up_;  // a false → true change counts as a reconnect only after the first time it was up
};

}  // namespace herald
