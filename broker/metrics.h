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

// What this binary is: the CMake project version and the git commit it was configured from ("unknown" outside a
// checkout). main() fills it from the same compile definitions --version prints.
struct BuildInfo {
    std::string version;
    std::string commit;
};

// One process's figures from /proc, read at scrape time (broker/process_metrics.h); absent when unreadable.
struct ProcessSample;

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

// One labelled histogram family with one set of bucket boundaries; children are created on first use and cached.
class LabelledHistogram {
public:
    LabelledHistogram(prometheus::Registry& registry, const char* name, const char* help, std::string label,
                      prometheus::Histogram::BucketBoundaries buckets);
    prometheus::Histogram& at(std::string_view value);

private:
    prometheus::Family<prometheus::Histogram>& family_;
    std::string label_;
    prometheus::Histogram::BucketBoundaries buckets_;
    std::map<std::string, prometheus::Histogram*, std::less<>> children_;
};

class Metrics {
private:
    std::shared_ptr<prometheus::Registry> registry_;  // first: every member below registers into it

public:
    explicit Metrics(const BuildInfo& build = {"unknown", "unknown"});
    std::string serialize() const;
    // Scrape time: sets the process gauges and advances the CPU counter to the sample's total. A figure the
    // sample lacks (unreadable /proc) keeps its last value.
    void record_process(const ProcessSample& sample);

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

    // Replay, gap repair and discontinuities (the hub).
    prometheus::Counter& messages_replayed;
    prometheus::Counter& gaps_repaired;
    LabelledCounter discontinuities;  // label reason: history_expired, epoch_changed

    // The backplane as the broker sees it (MeteredBackplane).
    prometheus::Histogram& cross_node_lag;
    LabelledHistogram backplane_command_duration;  // label op: publish, history, subscribe, save_session, load_session
    prometheus::Gauge& backplane_up;
    prometheus::Counter& backplane_reconnects;
    prometheus::Counter& backplane_resyncs;

    // Capacity and the process (read from /proc at scrape time).
    prometheus::Gauge& max_connections;
    prometheus::Counter& process_cpu_seconds;
    prometheus::Gauge& process_resident_memory;
    prometheus::Gauge& process_open_fds;
    prometheus::Gauge& process_max_fds;
    prometheus::Gauge& process_start_time;

private:
    // prometheus-cpp 1.0 counters only go up by increments: the CPU counter is advanced by the growth since the
    // last sample.
    double cpu_seconds_recorded_ = 0;
};

}  // namespace herald
