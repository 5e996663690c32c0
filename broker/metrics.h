// The node's Prometheus metrics (prometheus-cpp registry), served as text by GET /metrics. Label values come from
// bounded sets (close codes, error codes, handshake reasons, resume results) — never a channel or a client.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace herald {

// One labelled counter family whose children are created on first use and then cached, so the hot path does no
// registry lookup.
class LabelledCounter {
public:
    LabelledCounter(prometheus::Registry& registry, const char* name, const char* help, std::string label);
    prometheus::Counter& at(std::string_view value);
    void increment(std::string_view value, double by = 1) { at(value).Increment(by); }

private:
    prometheus::Family<prometheus::Counter>& family_;
    std::string label_;
    std::map<std::string, prometheus::Counter*, std::less<>> children_;
};

class Metrics {
private:
    std::shared_ptr<prometheus::Registry> registry_;  // first: every member below registers into it

public:
    Metrics();
    std::string serialize() const;

    prometheus::Gauge& connections;
    prometheus::Counter& connections_accepted;
    LabelledCounter connections_closed;  // label code
    LabelledCounter handshake_failures;  // label reason
    prometheus::Gauge& subscriptions;
    prometheus::Gauge& channels;
    prometheus::Counter& messages_published;
    prometheus::Counter& messages_delivered;
    prometheus::Counter& bytes_received;
    prometheus::Counter& bytes_sent;
    prometheus::Counter& slow_consumer_closes;
    LabelledCounter resumes;  // label result
    LabelledCounter errors;   // label code
    LabelledCounter auth_failures;  // label reason: missing_token, expired, bad_signature, subject_changed, api_key, ...
    LabelledCounter rate_limited;   // label limit: command (refused command) or connect (429 handshake)
    LabelledCounter token_events;   // label event: expired (token_expired sent), refreshed, refresh_timeout
    prometheus::Histogram& publish_to_write;
};

}  // namespace herald
