// The metrics registry: the exposition text of the families the dashboards and alerts rely on (names, types,
// pre-created label values), build info, and how a process sample moves the process metrics.
#include "broker/metrics.h"

#include <string>

#include <gtest/gtest.h>

#include "broker/process_metrics.h"

namespace herald {
namespace {

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

TEST(MetricsTest, NewFamiliesHaveTheirTypesAndPreCreatedSeries) {
    Metrics metrics(BuildInfo{"1.2.3", "abc1234"});
    const std::string text = metrics.serialize();
    for (const char* line : {
             "# TYPE herald_messages_replayed_total counter",
             "# TYPE herald_gaps_repaired_total counter",
             "# TYPE herald_discontinuities_total counter",
             "# TYPE herald_cross_node_lag_seconds histogram",
             "# TYPE herald_backplane_command_duration_seconds histogram",
             "# TYPE herald_backplane_up gauge",
             "# TYPE herald_backplane_reconnects_total counter",
             "# TYPE herald_backplane_resyncs_total counter",
             "# TYPE herald_max_connections gauge",
             "# TYPE herald_process_cpu_seconds_total counter",
             "# TYPE herald_process_resident_memory_bytes gauge",
             "# TYPE herald_process_open_fds gauge",
             "# TYPE herald_process_max_fds gauge",
             "# TYPE herald_process_start_time_seconds gauge",
             "# TYPE herald_build_info gauge",
             "herald_discontinuities_total{reason=\"history_expired\"} 0",
             "herald_discontinuities_total{reason=\"epoch_changed\"} 0",
             "herald_backplane_command_duration_seconds_count{op=\"publish\"} 0",
             "herald_backplane_command_duration_seconds_count{op=\"history\"} 0",
             "herald_backplane_command_duration_seconds_count{op=\"subscribe\"} 0",
             "herald_backplane_command_duration_seconds_count{op=\"save_session\"} 0",
             "herald_backplane_command_duration_seconds_count{op=\"load_session\"} 0",
             "herald_backplane_command_duration_seconds_bucket{op=\"publish\",le=\"0.0001\"} 0",
             "herald_backplane_command_duration_seconds_bucket{op=\"publish\",le=\"2.5\"} 0",
             "herald_cross_node_lag_seconds_bucket{le=\"0.0005\"} 0",
             "herald_cross_node_lag_seconds_bucket{le=\"5\"} 0",
             "herald_build_info{commit=\"abc1234\",version=\"1.2.3\"} 1",
         })
        EXPECT_TRUE(has_line(text, line)) << "missing line: " << line << "\nin:\n" << text;
}

TEST(MetricsTest, ProcessSampleSetsGaugesAndAdvancesTheCpuCounter) {
    Metrics metrics;
    metrics.record_process(ProcessSample{1.5, 4096, 7, 1024, 1'700'000'000});
    EXPECT_DOUBLE_EQ(metrics.process_cpu_seconds.Value(), 1.5);
    EXPECT_EQ(metrics.process_resident_memory.Value(), 4096);
    EXPECT_EQ(metrics.process_open_fds.Value(), 7);
    EXPECT_EQ(metrics.process_max_fds.Value(), 1024);
    EXPECT_EQ(metrics.process_start_time.Value(), 1'700'000'000);

    metrics.record_process(ProcessSample{2.25, 8192, 9, 1024, 1'700'000'000});
    EXPECT_DOUBLE_EQ(metrics.process_cpu_seconds.Value(), 2.25) << "the counter shows the process total";
    EXPECT_EQ(metrics.process_resident_memory.Value(), 8192);
    EXPECT_EQ(metrics.process_open_fds.Value(), 9);
}

TEST(MetricsTest, AFigureMissingFromASampleKeepsItsLastValue) {
    Metrics metrics;
    metrics.record_process(ProcessSample{1.5, 4096, 7, 1024, 1'700'000'000});
    metrics.record_process(ProcessSample{});
    EXPECT_DOUBLE_EQ(metrics.process_cpu_seconds.Value(), 1.5);
    EXPECT_EQ(metrics.process_resident_memory.Value(), 4096);
    EXPECT_EQ(metrics.process_open_fds.Value(), 7);
    EXPECT_EQ(metrics.process_max_fds.Value(), 1024);
    EXPECT_EQ(metrics.process_start_time.Value(), 1'700'000'000);

    metrics.record_process(ProcessSample{1.0, {}, {}, {}, {}});  // a smaller total (a misread) cannot lower it
    EXPECT_DOUBLE_EQ(metrics.process_cpu_seconds.Value(), 1.5);
    metrics.record_process(ProcessSample{3.0, {}, {}, {}, {}});
    EXPECT_DOUBLE_EQ(metrics.process_cpu_seconds.Value(), 3.0);
}

}  // namespace
}  // namespace herald
