// Registers every metric once, with its help text.
#include "broker/metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace herald {
namespace {

prometheus::Counter& counter(prometheus::Registry& r, const char* name, const char* help) {
    return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}

prometheus::Gauge& gauge(prometheus::Registry& r, const char* name, const char* help) {
    return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
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

Metrics::Metrics()
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
      publish_to_write(prometheus::BuildHistogram()
                           .Name("herald_publish_to_write_seconds")
                           .Help("Publish to completed socket write of a message frame (the oldest message of "
                                 "each completed write)")
                           .Register(*registry_)
                           .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                                            0.05, 0.1, 0.25, 0.5, 1, 2.5, 5})) {
    // Known results exist from the start so dashboards see zeros rather than no series.
    for (auto result : {"resumed", "history_expired", "epoch_changed", "invalid_position", "unknown_session"})
        resumes.at(result);
    for (auto limit : {"command", "connect"}) rate_limited.at(limit);
    for (auto event : {"expired", "refreshed", "refresh_timeout"}) token_events.at(event);
}

std::string Metrics::serialize() const {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, registry_->Collect());
    return out.str();
}

}  // namespace herald
