// Writes logfmt lines to stderr; values with spaces, quotes or '=' are quoted so lines stay machine-readable.
#include "broker/log.h"

#include <sys/time.h>

#include <cstdio>
#include <ctime>

namespace herald {
namespace {

std::string_view level_name(LogLevel level) {
    switch (level) {
        case LogLevel::Debug: return "debug";
        case LogLevel::Info: return "info";
        case LogLevel::Warn: return "warn";
        case LogLevel::Error: return "error";
    }
    return "info";
}

void append_value(std::string& line, std::string_view value) {
    bool quote = value.empty();
    for (char ch : value)
        if (ch == ' ' || ch == '"' || ch == '=' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20) quote = true;
    if (!quote) {
        line += value;
        return;
    }
    line += '"';
    for (char ch : value) {
        if (ch == '"' || ch == '\\') {
            line += '\\';
            line += ch;
        } else if (static_cast<unsigned char>(ch) < 0x20) {
            line += ' ';
        } else {
            line += ch;
        }
    }
    line += '"';
}

}  // namespace

void Logger::log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields) const {
    if (!enabled(level)) return;
    timeval tv{};
    gettimeofday(&tv, nullptr);
    tm utc{};
    gmtime_r(&tv.tv_sec, &utc);
    char ts[64];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                  utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(tv.tv_usec / 1000));
    std::string line = "ts=";
    line += ts;
    line += " level=";
    line += level_name(level);
    line += " event=";
    line += event;
    for (const auto& f : fields) {
        line += ' ';
        line += f.key;
        line += '=';
        append_value(line, f.value);
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace herald
