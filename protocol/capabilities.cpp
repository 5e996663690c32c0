// Parses and matches channel capabilities. Patterns are validated when parsed so that matching can be a plain
// left-to-right walk with no allocation: '*' is known to be last, and "{sub}" is the only brace sequence.
#include "protocol/capabilities.h"

#include <exception>
#include <nlohmann/json.hpp>

#include "protocol/channel_name.h"

namespace herald {
namespace {

constexpr std::string_view kSubjectPlaceholder = "{sub}";
constexpr size_t kMaxPatternLength = 255;
constexpr size_t kMaxQuotedLength = 64;
constexpr uint8_t kAllOperations = static_cast<uint8_t>(Operation::Subscribe) |
                                   static_cast<uint8_t>(Operation::Publish) |
                                   static_cast<uint8_t>(Operation::History);

// Untrusted text for an error message: at most 64 bytes, printable ASCII only, in double quotes.
std::string quote(std::string_view text) {
    std::string out = "\"";
    for (size_t i = 0; i < text.size() && i < kMaxQuotedLength; ++i) {
        const char c = text[i];
        out += (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    if (text.size() > kMaxQuotedLength) out += "...";
    out += '"';
    return out;
}

bool is_channel_char(char c) { return is_valid_channel_name(std::string_view(&c, 1)); }

// Empty when the pattern is well formed, else why not.
std::string pattern_fault(std::string_view pattern) {
    if (pattern.empty()) return "a pattern must not be empty";
    if (pattern.size() > kMaxPatternLength) return "pattern " + quote(pattern) + " is longer than 255 bytes";
    for (size_t i = 0; i < pattern.size();) {
        if (pattern.substr(i, kSubjectPlaceholder.size()) == kSubjectPlaceholder) {
            i += kSubjectPlaceholder.size();
        } else if (pattern[i] == '*') {
            if (i + 1 != pattern.size()) return "pattern " + quote(pattern) + ": '*' may only end a pattern";
            ++i;
        } else if (!is_channel_char(pattern[i])) {
            return "pattern " + quote(pattern) + " has a character outside [A-Za-z0-9_.:@/=-] (or \"{sub}\", '*')";
        } else {
            ++i;
        }
    }
    return {};
}

std::optional<uint8_t> operation_bits(std::string_view name) {
    if (name == "subscribe") return static_cast<uint8_t>(Operation::Subscribe);
    if (name == "publish") return static_cast<uint8_t>(Operation::Publish);
    if (name == "history") return static_cast<uint8_t>(Operation::History);
    if (name == "*") return kAllOperations;
    return std::nullopt;
}

// `pattern` is validated. `subject_usable` says whether "{sub}" may match at all.
bool pattern_matches(std::string_view pattern, std::string_view channel, std::string_view subject,
                     bool subject_usable) {
    size_t c = 0;  // invariant: c <= channel.size()
    for (size_t p = 0; p < pattern.size();) {
        if (pattern[p] == '*') return true;  // validated to be the last character: the rest is a prefix match
        if (pattern[p] == '{') {             // validated: only "{sub}" starts with '{'
            if (!subject_usable || channel.substr(c, subject.size()) != subject) return false;
            c += subject.size();
            p += kSubjectPlaceholder.size();
            continue;
        }
        if (c == channel.size() || channel[c] != pattern[p]) return false;
        ++c;
        ++p;
    }
    return c == channel.size();
}

}  // namespace

std::string_view operation_name(Operation op) {
    switch (op) {
        case Operation::Subscribe:
            return "subscribe";
        case Operation::Publish:
            return "publish";
        case Operation::History:
            return "history";
    }
    return "unknown";
}

Result<Capabilities, std::string> Capabilities::parse(const nlohmann::json& object) {
    try {
        if (!object.is_object()) return fail(std::string("capabilities must be a JSON object"));
        Capabilities caps;
        caps.grants_.reserve(object.size());
        for (const auto& [pattern, operations] : object.items()) {
            if (std::string fault = pattern_fault(pattern); !fault.empty()) return fail(std::move(fault));
            if (!operations.is_array()) {
                return fail("pattern " + quote(pattern) + " must map to an array of operations");
            }
            Grant grant{pattern, 0, pattern.find(kSubjectPlaceholder) != std::string::npos};
            for (const auto& op : operations) {
                if (!op.is_string()) return fail("pattern " + quote(pattern) + ": each operation must be a string");
                const auto& name = op.get_ref<const std::string&>();
                const auto bits = operation_bits(name);
                if (!bits) {
                    return fail("pattern " + quote(pattern) + ": unknown operation " + quote(name) +
                                " (expected subscribe, publish, history or *)");
                }
                grant.operations |= *bits;
            }
            caps.grants_.push_back(std::move(grant));
        }
        return caps;
    } catch (const std::exception&) {
        return fail(std::string("capabilities could not be read"));
    }
}

Result<Capabilities, std::string> Capabilities::parse_text(std::string_view json_text) {
    try {
        const auto object = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
        if (object.is_discarded()) return fail(std::string("capabilities are not valid JSON"));
        return parse(object);
    } catch (const std::exception&) {
        return fail(std::string("capabilities are not valid JSON"));
    }
}

Capabilities Capabilities::all() {
    Capabilities caps;
    caps.grants_.push_back(Grant{"*", kAllOperations, false});
    return caps;
}

bool Capabilities::allows(std::string_view channel, Operation op, std::string_view subject) const {
    const auto bit = static_cast<uint8_t>(op);
    // Computed at most once, and only when a "{sub}" pattern grants the operation.
    int subject_usable = -1;
    for (const Grant& grant : grants_) {
        if ((grant.operations & bit) == 0) continue;
        if (grant.uses_subject && subject_usable < 0) subject_usable = is_valid_channel_name(subject) ? 1 : 0;
        if (pattern_matches(grant.pattern, channel, subject, subject_usable == 1)) return true;
    }
    return false;
}

bool Capabilities::empty() const {
    for (const Grant& grant : grants_) {
        if (grant.operations != 0) return false;
    }
    return true;
}

}  // namespace herald
