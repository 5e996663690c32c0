// Channel capabilities: which operations a connection may perform on which channels, from a token's "caps" claim
// or --default-capabilities. Parsed once per connect; `allows` runs per command and does not allocate.
#pragma once
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.h"

namespace herald {

// Bit values: a grant holds a set of operations as a mask.
enum class Operation : uint8_t { Subscribe = 1, Publish = 2, History = 4 };

// "subscribe", "publish", "history".
std::string_view operation_name(Operation op);

// A list of (pattern → operations) grants. A pattern is an exact channel name, a prefix ending in '*', or '*'
// alone; "{sub}" anywhere in it stands for the token's subject. Grants are a union: an operation is allowed when
// any matching pattern grants it. The default-constructed value allows nothing.
class Capabilities {
public:
    Capabilities() = default;

    // `object` is {"pattern": ["subscribe" | "publish" | "history" | "*", ...], ...}. The error names the pattern
    // or operation at fault (untrusted text is truncated and non-printable bytes replaced).
    static Result<Capabilities, std::string> parse(const nlohmann::json& object);
    static Result<Capabilities, std::string> parse_text(std::string_view json_text);
    // Everything allowed on every channel: used when no JWT key is configured.
    static Capabilities all();

    // `channel` is a validated channel name. A pattern with "{sub}" never matches when `subject` is empty or holds
    // characters outside the channel-name alphabet, so a subject cannot smuggle in a '*' or widen a pattern.
    bool allows(std::string_view channel, Operation op, std::string_view subject) const;
    // True when no pattern grants any operation.
    bool empty() const;

    bool operator==(const Capabilities&) const = default;

private:
    struct Grant {
        std::string pattern;
        uint8_t operations = 0;       // Operation bits
        bool uses_subject = false;    // pattern contains "{sub}"
        bool operator==(const Grant&) const = default;
    };
    std::vector<Grant> grants_;
};

}  // namespace herald
