// The /proc reader: plausible figures for this very process, exact parsing of made-up files (a command name with
// spaces and parentheses), and absent figures — never an exception — when files are missing or malformed.
#include "broker/process_metrics.h"

#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace herald {
namespace {

namespace fs = std::filesystem;

double unix_now() {
    using namespace std::chrono;
    return duration<double>(system_clock::now().time_since_epoch()).count();
}

TEST(ProcessMetricsTest, ThisProcessHasPlausibleFigures) {
    ProcessSample s = read_process_sample();
    ASSERT_TRUE(s.cpu_seconds && s.resident_bytes && s.open_fds && s.start_time_seconds)
        << "every /proc figure must be readable on Linux";
    EXPECT_GE(*s.cpu_seconds, 0);
    EXPECT_GT(*s.resident_bytes, 0);
    EXPECT_GE(*s.open_fds, 3) << "stdin, stdout and stderr at least";
    rlimit limit{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
    if (limit.rlim_cur == RLIM_INFINITY) {
        EXPECT_FALSE(s.max_fds) << "an unlimited soft limit has no number";
    } else {
        ASSERT_TRUE(s.max_fds);
        EXPECT_EQ(*s.max_fds, static_cast<double>(limit.rlim_cur));
        EXPECT_GE(*s.max_fds, *s.open_fds);
    }
    const double now = unix_now();
    EXPECT_LE(*s.start_time_seconds, now + 1) << "started in the future?";
    EXPECT_GE(*s.start_time_seconds, now - 3600) << "this test process started more than an hour ago?";
}

TEST(ProcessMetricsTest, OpenFdsFollowsDescriptorsOpenedAndClosed) {
    const double before = *read_process_sample().open_fds;
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const double during = *read_process_sample().open_fds;
    close(fds[0]);
    close(fds[1]);
    const double after = *read_process_sample().open_fds;
    EXPECT_EQ(during, before + 2) << "a pipe adds two descriptors; the reader's own directory is not counted";
    EXPECT_EQ(after, before);
}

// A fake /proc in a temporary directory.
class FakeProcTest : public ::testing::Test {
protected:
    FakeProcTest() {
        std::string pattern = (fs::temp_directory_path() / "herald-proc-XXXXXX").string();
        root_ = mkdtemp(pattern.data());
        fs::create_directories(root_ + "/self/fd");
    }
    ~FakeProcTest() override { fs::remove_all(root_); }

    void write(const std::string& relative, const std::string& text) {
        std::ofstream(root_ + "/" + relative) << text;
    }

    std::string root_;
};

TEST_F(FakeProcTest, ParsesStatAfterTheLastParenthesisStatmAndBtime) {
    const long tck = sysconf(_SC_CLK_TCK);
    const long page = sysconf(_SC_PAGESIZE);
    // Fields 3..22 after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    // utime(14) stime(15) cutime cstime priority nice threads itrealvalue starttime(22) vsize rss …
    write("self/stat", "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 " + std::to_string(3 * tck) + " " +
                           std::to_string(tck / 2) + " 7 7 20 0 1 0 " + std::to_string(90 * tck) +
                           " 123456 789 18446744073709551615\n");
    write("self/statm", "5000 1234 300 10 0 900 0\n");
    write("stat", "cpu  1 2 3 4\nintr 5\nbtime 1700000000\nprocesses 9\n");
    for (const char* fd : {"0", "1", "2"}) write(std::string("self/fd/") + fd, "");

    ProcessSample s = read_process_sample(root_);
    ASSERT_TRUE(s.cpu_seconds);
    EXPECT_DOUBLE_EQ(*s.cpu_seconds, 3.5) << "utime + stime, in seconds";
    ASSERT_TRUE(s.resident_bytes);
    EXPECT_DOUBLE_EQ(*s.resident_bytes, 1234.0 * static_cast<double>(page));
    ASSERT_TRUE(s.start_time_seconds);
    EXPECT_DOUBLE_EQ(*s.start_time_seconds, 1'700'000'090.0) << "btime + starttime ticks";
    ASSERT_TRUE(s.open_fds);
    EXPECT_EQ(*s.open_fds, 3);
}

TEST_F(FakeProcTest, MissingFilesLeaveTheirFiguresEmpty) {
    fs::remove_all(root_ + "/self");
    ProcessSample s = read_process_sample(root_);
    EXPECT_FALSE(s.cpu_seconds);
    EXPECT_FALSE(s.resident_bytes);
    EXPECT_FALSE(s.open_fds);
    EXPECT_FALSE(s.start_time_seconds);

    ProcessSample nowhere = read_process_sample(root_ + "/does-not-exist");
    EXPECT_FALSE(nowhere.cpu_seconds || nowhere.resident_bytes || nowhere.open_fds || nowhere.start_time_seconds);
}

TEST_F(FakeProcTest, MalformedFilesLeaveTheirFiguresEmpty) {
    write("self/stat", "4242 (truncated) S 1 2 3\n");
    write("self/statm", "5000 lots\n");
    write("stat", "cpu 1 2 3\n");  // no btime
    ProcessSample s = read_process_sample(root_);
    EXPECT_FALSE(s.cpu_seconds);
    EXPECT_FALSE(s.resident_bytes);
    EXPECT_FALSE(s.start_time_seconds);
    ASSERT_TRUE(s.open_fds) << "an empty fd directory is a valid count";
    EXPECT_EQ(*s.open_fds, 0);

    write("self/stat", "4242 no-parenthesis S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20\n");
    EXPECT_FALSE(read_process_sample(root_).cpu_seconds);
}

TEST_F(FakeProcTest, StartTimeNeedsBtime) {
    write("self/stat", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 10 10 0 0 20 0 1 0 500 0 0\n");
    write("stat", "btime notanumber\n");
    ProcessSample s = read_process_sample(root_);
    EXPECT_TRUE(s.cpu_seconds);
    EXPECT_FALSE(s.start_time_seconds);
}

}  // namespace
}  // namespace herald
