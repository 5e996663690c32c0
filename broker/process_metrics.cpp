// /proc parsing for the process metrics: every field is checked, and a file that cannot be read or parsed leaves
// its figures empty.
#include "broker/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string_view>
#include <vector>

namespace herald {
namespace {

std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return std::nullopt;
    return text.str();
}

std::optional<unsigned long long> to_number(std::string_view text) {
    unsigned long long value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

std::vector<std::string_view> split_spaces(std::string_view text) {
    std::vector<std::string_view> fields;
    size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\n')) ++i;
        size_t start = i;
        while (i < text.size() && text[i] != ' ' && text[i] != '\n') ++i;
        if (i > start) fields.push_back(text.substr(start, i - start));
    }
    return fields;
}

std::optional<unsigned long long> boot_time(const std::string& proc_root) {
    auto text = read_file(proc_root + "/stat");
    if (!text) return std::nullopt;
    std::istringstream lines(*text);
    std::string line;
    while (std::getline(lines, line)) {
        constexpr std::string_view kKey = "btime ";
        if (line.starts_with(kKey)) return to_number(std::string_view(line).substr(kKey.size()));
    }
    return std::nullopt;
}

// /proc/<pid>/stat: "pid (comm) state ppid …". comm may hold spaces and parentheses, so fields are counted from
// the last ')'; field 3 (state) is the first after it.
void read_stat(const std::string& proc_root, ProcessSample& sample) {
    auto text = read_file(proc_root + "/self/stat");
    if (!text) return;
    size_t paren = text->rfind(')');
    if (paren == std::string::npos) return;
    auto fields = split_spaces(std::string_view(*text).substr(paren + 1));
    auto field = [&](size_t number) -> std::optional<unsigned long long> {
        if (number < 3 || number - 3 >= fields.size()) return std::nullopt;
        return to_number(fields[number - 3]);
    };
    const long ticks = sysconf(_SC_CLK_TCK);
    if (ticks <= 0) return;
    auto utime = field(14), stime = field(15), starttime = field(22);
    if (utime && stime) sample.cpu_seconds = static_cast<double>(*utime + *stime) / static_cast<double>(ticks);
    if (starttime) {
        if (auto btime = boot_time(proc_root))
            sample.start_time_seconds =
                static_cast<double>(*btime) + static_cast<double>(*starttime) / static_cast<double>(ticks);
    }
}

void read_statm(const std::string& proc_root, ProcessSample& sample) {
    auto text = read_file(proc_root + "/self/statm");
    if (!text) return;
    auto fields = split_spaces(*text);
    if (fields.size() < 2) return;
    auto resident = to_number(fields[1]);
    const long page = sysconf(_SC_PAGESIZE);
    if (resident && page > 0) sample.resident_bytes = static_cast<double>(*resident) * static_cast<double>(page);
}

void count_fds(const std::string& proc_root, ProcessSample& sample) {
    DIR* dir = opendir((proc_root + "/self/fd").c_str());
    if (dir == nullptr) return;
    const std::string own = std::to_string(dirfd(dir));
    double count = 0;
    while (dirent* entry = readdir(dir)) {
        std::string_view name = entry->d_name;
        if (name == "." || name == ".." || name == own) continue;
        ++count;
    }
    closedir(dir);
    sample.open_fds = count;
}

}  // namespace

ProcessSample read_process_sample(const std::string& proc_root) {
    ProcessSample sample;
    read_stat(proc_root, sample);
    read_statm(proc_root, sample);
    count_fds(proc_root, sample);
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
        sample.max_fds = static_cast<double>(limit.rlim_cur);
    return sample;
}

}  // namespace herald
