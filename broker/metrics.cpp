// Registers every metric once, with its help text.
#include "broker/metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

#include "broker/process_metrics.h"

namespace herald {
namespace {

prometheus::Counter& counter(prometheus::Registry& r, const char* name, const char* help) {
    return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}

prometheus::Gauge& gauge(prometheus::Registry& r, const char* name, const char* help) {
    return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

prometheus::Histogram& histogram(prometheus::Registry& r, const char* name, const char* help,
                                 prometheus::Histogram::BucketBoundaries buckets) {
    return prometheus::BuildHistogram().Name(name).Help(help).Register(r).Add({}, std::move(buckets));
}

// Latencies between nodes and to the client: half a millisecond to five seconds.
prometheus::Histogram::BucketBoundaries delivery_buckets() {
    return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
}

}  // namespace

LabelledCounter::LabelledCounter(prometheus::Registry& registry, const char* name, const char* help,
                                 std::string label)
    : family_(prometheus::BuildCounter().Name(name).Help(help).Register(registry)), label_(std::move(label)) {}

prometheus::Counter& LabelledCounter::at(std::string_view value) {
    auto it = children_.find(value);
    if (it == children_.end())
        it = children_.emplace(std::string(value), &family_.Add({{label_, std::string(value)}})).first;
    return *it->second;
}

LabelledHistogram::LabelledHistogram(prometheus::Registry& registry, const char* name, const char* help,
                                     std::string label, prometheus::Histogram::BucketBoundaries buckets)
    : family_(prometheus::BuildHistogram().Name(name).Help(help).Register(registry)),
      label_(std::move(label)),
      buckets_(std::move(buckets)) {}

prometheus::Histogram& LabelledHistogram::at(std::string_view value) {
    auto it = children_.find(value);
    if (it == children_.end())
        it = children_.emplace(std::string(value), &family_.Add({{label_, std::string(value)}}, buckets_)).first;
    return *it->second;
}

Metrics::Metrics(const BuildInfo& build)
    : registry_(std::make_shared<prometheus::Registry>()),
      connections(gauge(*registry_, "herald_connections", "Open client connections (WebSocket and HTTP)")),
      connections_accepted(counter(*registry_, "herald_connections_accepted_total", "TCP connections accepted")),
      connections_closed(*registry_, "herald_connections_closed_total",
                         "Connections closed, by WebSocket close code (0: closed without a WebSocket close)", "code"),
      handshake_failures(*registry_, "herald_handshake_failures_total",
                         "Refused WebSocket handshakes and HTTP requests, by reason", "reason"),
      subscriptions(gauge(*registry_, "herald_subscriptions", "Active channel subscriptions on this node")),
      channels(gauge(*registry_, "herald_channels", "Channels with at least one subscriber on this node")),
      messages_published(counter(*registry_, "herald_messages_published_total",
                                 "Messages published through this node (idempotent repeats excluded)")),
      messages_delivered(counter(*registry_, "herald_messages_delivered_total",
                                 "Messages queued to subscribers, one per subscriber per message")),
      bytes_received(counter(*registry_, "herald_bytes_received_total", "Bytes read from client sockets")),
      bytes_sent(counter(*registry_, "herald_bytes_sent_total", "Bytes written to client sockets")),
      slow_consumer_closes(counter(*registry_, "herald_slow_consumer_closes_total",
                                   "Connections closed with 4008 because their outbound queue exceeded the limit")),
      resumes(*registry_, "herald_resumes_total", "Subscription and session resume attempts, by result", "result"),
      errors(*registry_, "herald_errors_total", "`error` replies sent to clients, by code", "code"),
      auth_failures(*registry_, "herald_auth_failures_total",
                    "Refused tokens on connect or refresh and refused /api/* keys, by reason", "reason"),
      rate_limited(*registry_, "herald_rate_limited_total",
                   "Commands refused by --client-rate (limit=command) and handshakes refused by --connect-rate "
                   "(limit=connect)",
                   "limit"),
      token_events(*registry_, "herald_token_events_total",
                   "Token life on live connections: expired (token_expired sent), refreshed, refresh_timeout "
                   "(closed 4001)",
                   "event"),
      publish_to_write(histogram(*registry_, "herald_publish_to_write_seconds",
                                 "Seconds from publish (publishing node's wall clock) to the completed socket write "
                                 "of a message frame (the oldest message of each completed write)",
                                 delivery_buckets())),
      messages_replayed(counter(*registry_, "herald_messages_replayed_total",
                                "Messages sent from history on subscribe/resume (replay), one per message per "
                                "subscriber")),
      gaps_repaired(counter(*registry_, "herald_gaps_repaired_total",
                            "Live delivery gaps (skipped serials, or deliveries lost by a backplane resync) filled "
                            "from history")),
      discontinuities(*registry_, "herald_discontinuities_total",
                      "`discontinuity` notices announced on a channel, by reason", "reason"),
      cross_node_lag(histogram(*registry_, "herald_cross_node_lag_seconds",
                               "Seconds from publish (publishing node's wall clock) to the message's arrival from "
                               "the backplane on this node",
                               delivery_buckets())),
      backplane_command_duration(*registry_, "herald_backplane_command_duration_seconds",
                                 "Seconds from each backplane call to its answer, as the broker sees it (with "
                                 "--redis: the Redis round trip), by op",
                                 "op", {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                        0.5, 1, 2.5}),
      backplane_up(gauge(*registry_, "herald_backplane_up", "1 while the backplane (Redis) is reachable, else 0")),
      backplane_reconnects(counter(*registry_, "herald_backplane_reconnects_total",
                                   "Times the backplane became reachable again after being unreachable")),
      backplane_resyncs(counter(*registry_, "herald_backplane_resyncs_total",
                                "Backplane resyncs: deliveries may have been lost (Redis pub/sub reconnected), so "
                                "every active channel was caught up from history")),
      max_connections(gauge(*registry_, "herald_max_connections", "Configured --max-connections")),
      process_cpu_seconds(counter(*registry_, "herald_process_cpu_seconds_total",
                                  "User and system CPU time spent by the process, in seconds")),
      process_resident_memory(gauge(*registry_, "herald_process_resident_memory_bytes",
                                    "Resident memory of the process, in bytes")),
      process_open_fds(gauge(*registry_, "herald_process_open_fds", "Open file descriptors of the process")),
      process_max_fds(gauge(*registry_, "herald_process_max_fds",
                            "Soft limit on open file descriptors (RLIMIT_NOFILE)")),
      process_start_time(gauge(*registry_, "herald_process_start_time_seconds",
                               "Start time of the process, in seconds since the Unix epoch")) {
    // Known results exist from the start so dashboards see zeros rather than no series.
    for (auto result : {"resumed", "history_expired", "epoch_changed", "invalid_position", "unknown_session"})
        resumes.at(result);
    for (auto limit : {"command", "connect"}) rate_limited.at(limit);
    for (auto event : {"expired", "refreshed", "refresh_timeout"}) token_events.at(event);
    for (auto reason : {"history_expired", "epoch_changed"}) discontinuities.at(reason);
    for (auto op : {"publish", "history", "subscribe", "save_session", "load_session"})
        backplane_command_duration.at(op);
    prometheus::BuildGauge()
        .Name("herald_build_info")
        .Help("Always 1; the labels say which build runs: version (CMake project version) and commit (git)")
        .Register(*registry_)
        .Add({{"version", build.version}, {"commit", build.commit}})
        .Set(1);
}

void Metrics::record_process(const ProcessSample& sample) {
    if (sample.cpu_seconds && *sample.cpu_seconds > cpu_seconds_recorded_) {
        process_cpu_seconds.Increment(*sample.cpu_seconds - cpu_seconds_recorded_);
        cpu_seconds_recorded_ = *sample.cpu_seconds;
    }
    if (sample.resident_bytes) process_resident_memory.Set(*sample.resident_bytes);
    if (sample.open_fds) process_open_fds.Set(*sample.open_fds);
    if (sample.max_fds) process_max_fds.Set(*sample.max_fds);
    if (sample.start_time_seconds) process_start_time.Set(*sample.start_time_seconds);
}

std::string Metrics::serialize() const {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, registry_->Collect());
    return out.str();
}

}  // namespace herald
