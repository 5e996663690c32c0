// Call timing and listener accounting around another Backplane.
#include "broker/metered_backplane.h"

#include <utility>

namespace herald {

MeteredBackplane::MeteredBackplane(Backplane& inner, Metrics& metrics, MeterClocks clocks)
    : inner_(inner),
      metrics_(metrics),
      clocks_(std::move(clocks)),
      publish_duration_(metrics.backplane_command_duration.at("publish")),
      history_duration_(metrics.backplane_command_duration.at("history")),
      subscribe_duration_(metrics.backplane_command_duration.at("subscribe")),
      save_session_duration_(metrics.backplane_command_duration.at("save_session")),
      load_session_duration_(metrics.backplane_command_duration.at("load_session")),
      up_(inner.available()),
      ever_up_(up_) {
    metrics_.backplane_up.Set(up_ ? 1 : 0);
    inner_.set_listener(this);
}

MeteredBackplane::~MeteredBackplane() { inner_.set_listener(nullptr); }

template <typename T>
BackplaneCallback<T> MeteredBackplane::timed(prometheus::Histogram& histogram, BackplaneCallback<T> done) {
    // Captures the clock and the histogram, not `this`: the answer only needs what outlives every call.
    return [&histogram, clock = clocks_.monotonic_ns, start = clocks_.monotonic_ns(),
            done = std::move(done)](Result<T, BackplaneError> result) mutable {
        const uint64_t now = clock();
        histogram.Observe(now > start ? static_cast<double>(now - start) / 1e9 : 0.0);
        if (done) done(std::move(result));
    };
}

void MeteredBackplane::publish(PublishRequest request, BackplaneCallback<PublishOutcome> done) {
    inner_.publish(std::move(request), timed(publish_duration_, std::move(done)));
}

void MeteredBackplane::history(HistoryRequest request, BackplaneCallback<HistorySlice> done) {
    inner_.history(std::move(request), timed(history_duration_, std::move(done)));
}

void MeteredBackplane::subscribe(const std::string& channel, BackplaneCallback<Unit> ready) {
    inner_.subscribe(channel, timed(subscribe_duration_, std::move(ready)));
}

void MeteredBackplane::save_session(const std::string& session_id, SessionRecord record, uint64_t ttl_ms,
                                    BackplaneCallback<Unit> done) {
    inner_.save_session(session_id, std::move(record), ttl_ms, timed(save_session_duration_, std::move(done)));
}

void MeteredBackplane::load_session(const std::string& session_id,
                                    BackplaneCallback<std::optional<SessionRecord>> done) {
    inner_.load_session(session_id, timed(load_session_duration_, std::move(done)));
}

void MeteredBackplane::on_delivery(const Delivery& delivery) {
    // 0: the publisher did not stamp it. A publisher's clock ahead of ours reads as no lag rather than negative.
    if (const uint64_t published = delivery.message.published_at_us; published != 0) {
        const uint64_t now = clocks_.wall_us();
        metrics_.cross_node_lag.Observe(now > published ? static_cast<double>(now - published) / 1e6 : 0.0);
    }
    if (listener_) listener_->on_delivery(delivery);
}

void MeteredBackplane::on_availability(bool up) {
    if (up && !up_ && ever_up_) metrics_.backplane_reconnects.Increment();
    up_ = up;
    ever_up_ = ever_up_ || up;
    metrics_.backplane_up.Set(up ? 1 : 0);
    if (listener_) listener_->on_availability(up);
}

void MeteredBackplane::on_resync() {
    metrics_.backplane_resyncs.Increment();
    if (listener_) listener_->on_resync();
}

}  // namespace herald
