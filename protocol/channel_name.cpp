// Channel-name validation: the allowed alphabet needs no JSON escaping, which lets the hot-path encoders copy
// names verbatim.
#include "protocol/channel_name.h"

#include <array>

namespace herald {
namespace {

constexpr std::array<bool, 256> make_allowed_table() {
    std::array<bool, 256> table{};
    for (char c = 'A'; c <= 'Z'; ++c) table[static_cast<unsigned char>(c)] = true;
    for (char c = 'a'; c <= 'z'; ++c) table[static_cast<unsigned char>(c)] = true;
    for (char c = '0'; c <= '9'; ++c) table[static_cast<unsigned char>(c)] = true;
    for (char c : {'_', '.', ':', '@', '/', '=', '-'}) table[static_cast<unsigned char>(c)] = true;
    return table;
}
constexpr std::array<bool, 256> kAllowed = make_allowed_table();

}  // namespace

bool is_valid_channel_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxChannelNameLength) return false;
    for (char c : name) {
        if (!kAllowed[static_cast<unsigned char>(c)]) return false;
    }
    return true;
}

std::string_view channel_namespace(std::string_view name) {
    const size_t colon = name.find(':');
    if (colon == std::string_view::npos) return {};
    return name.substr(0, colon);
}

}  // namespace herald
