// Tests for protocol/channel_name.cpp: the alphabet, the length bounds and the namespace prefix.
#include "protocol/channel_name.h"

#include <gtest/gtest.h>

#include <string>

namespace herald {
namespace {

struct NameCase {
    std::string name;
    bool valid;
};

TEST(ChannelName, Validity) {
    const NameCase cases[] = {
        {"a", true},
        {"chat", true},
        {"chat:room1", true},
        {"ABCxyz0189", true},
        {"_.:@/=-", true},
        {"user@example.com/inbox=1", true},
        {"a:b:c", true},
        {":", true},
        {std::string(255, 'x'), true},
        {std::string(254, 'x') + "-", true},
        {"", false},
        {std::string(256, 'x'), false},
        {"has space", false},
        {"tab\t", false},
        {"quote\"", false},
        {"back\\slash", false},
        {"hash#", false},
        {"plus+", false},
        {"star*", false},
        {"question?", false},
        {"comma,", false},
        {"percent%", false},
        {"brace{", false},
        {"caf\xc3\xa9", false},  // é: only ASCII is allowed
        {std::string("nul\0x", 5), false},
        {"newline\n", false},
        {"\x7f", false},
    };
    for (const NameCase& c : cases) {
        EXPECT_EQ(is_valid_channel_name(c.name), c.valid)
            << "name \"" << c.name << "\" (" << c.name.size() << " bytes): expected "
            << (c.valid ? "valid" : "invalid");
    }
}

TEST(ChannelName, EveryAsciiByteOutsideTheAlphabetIsRejected) {
    const std::string allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:@/=-";
    for (int b = 0; b < 256; ++b) {
        const std::string name(1, static_cast<char>(b));
        const bool expected = allowed.find(static_cast<char>(b)) != std::string::npos;
        EXPECT_EQ(is_valid_channel_name(name), expected) << "byte 0x" << std::hex << b;
    }
}

TEST(ChannelName, Namespace) {
    const std::pair<std::string_view, std::string_view> cases[] = {
        {"chat:room1", "chat"},
        {"chat:room:1", "chat"},
        {"plain", ""},
        {":leading", ""},
        {"trailing:", "trailing"},
        {"", ""},
    };
    for (const auto& [name, expected] : cases) {
        EXPECT_EQ(channel_namespace(name), expected) << "name \"" << name << "\"";
    }
}

}  // namespace
}  // namespace herald
