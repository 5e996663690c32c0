// Channel names: 1–255 characters of [A-Za-z0-9_.:@/=-]; the namespace is the prefix before the first ':'.
#pragma once
#include <string_view>

namespace herald {

inline constexpr size_t kMaxChannelNameLength = 255;

bool is_valid_channel_name(std::string_view name);
// "chat:room1" → "chat"; a name without ':' has the empty namespace.
std::string_view channel_namespace(std::string_view name);

}  // namespace herald
