// Reads this process's CPU time, memory, file descriptors and start time from /proc (Linux), for the
// herald_process_* metrics at scrape time. An unreadable or malformed figure is absent, never an exception.
#pragma once
#include <optional>
#include <string>

namespace herald {

struct ProcessSample {
    std::optional<double> cpu_seconds;         // user + system time (/proc/self/stat utime + stime)
    std::optional<double> resident_bytes;      // /proc/self/statm resident pages × page size
    std::optional<double> open_fds;            // entries of /proc/self/fd, not counting the one reading it
    std::optional<double> max_fds;             // RLIMIT_NOFILE soft limit (none when unlimited)
    std::optional<double> start_time_seconds;  // unix time: /proc/stat btime + starttime ticks
};

// `proc_root` is "/proc" in the broker; tests point it at a directory of made-up files. The rlimit is always this
// process's.
ProcessSample read_process_sample(const std::string& proc_root = "/proc");

}  // namespace herald
