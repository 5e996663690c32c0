// Structured logging: one line per event on stderr, `ts=… level=… event=… key=value …`.
#pragma once
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "broker/config.h"

namespace herald {

struct LogField {
    std::string_view key;
    std::string value;
    LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
    LogField(std::string_view k, const std::string& v) : key(k), value(v) {}
    LogField(std::string_view k, const char* v) : key(k), value(v) {}
    template <typename N>
        requires std::is_arithmetic_v<N>
    LogField(std::string_view k, N v) : key(k), value(std::to_string(v)) {}
};

class Logger {
public:
    explicit Logger(LogLevel level) : level_(level) {}
    bool enabled(LogLevel level) const { return level >= level_; }
    void log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields = {}) const;
    void debug(std::string_view event, std::initializer_list<LogField> fields = {}) const { log(LogLevel::Debug, event, fields); }
    void info(std::string_view event, std::initializer_list<LogField> fields = {}) const { log(LogLevel::Info, event, fields); }
    void warn(std::string_view event, std::initializer_list<LogField> fields = {}) const { log(LogLevel::Warn, event, fields); }
    void error(std::string_view event, std::initializer_list<LogField> fields = {}) const { log(LogLevel::Error, event, fields); }

private:
    LogLevel level_;
};

}  // namespace herald
