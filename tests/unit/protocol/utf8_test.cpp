// Tests for protocol/utf8.cpp: each sequence whole, one byte at a time, and split at every position.
#include "protocol/utf8.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace herald {
namespace {

struct Case {
    std::string name;
    std::string bytes;
    bool valid;              // a complete, valid string
    bool prefix_ok;          // every byte accepted (true for valid strings and for truncated ones)
    size_t error_index = 0;  // first rejected byte when !prefix_ok
};

std::vector<Case> cases() {
    return {
        {"empty", "", true, true},
        {"ascii", "Hello, world", true, true},
        {"U+0000", std::string(1, '\0'), true, true},
        {"U+007F", "\x7F", true, true},
        {"U+0080", "\xC2\x80", true, true},
        {"U+07FF", "\xDF\xBF", true, true},
        {"U+0800", "\xE0\xA0\x80", true, true},
        {"U+D7FF", "\xED\x9F\xBF", true, true},
        {"U+E000", "\xEE\x80\x80", true, true},
        {"U+FFFF", "\xEF\xBF\xBF", true, true},
        {"U+10000", "\xF0\x90\x80\x80", true, true},
        {"U+10FFFF", "\xF4\x8F\xBF\xBF", true, true},
        {"kosme", "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5", true, true},
        {"long ascii then emoji", std::string(40, 'a') + "\xF0\x9F\x98\x80", true, true},
        {"overlong C0 80", "\xC0\x80", false, false, 0},
        {"overlong C1 BF", "\xC1\xBF", false, false, 0},
        {"overlong E0 80 80", "\xE0\x80\x80", false, false, 1},
        {"overlong E0 9F BF", "\xE0\x9F\xBF", false, false, 1},
        {"overlong F0 80 80 80", "\xF0\x80\x80\x80", false, false, 1},
        {"overlong F0 8F BF BF", "\xF0\x8F\xBF\xBF", false, false, 1},
        {"surrogate ED A0 80", "\xED\xA0\x80", false, false, 1},
        {"surrogate ED BF BF", "\xED\xBF\xBF", false, false, 1},
        {"above U+10FFFF F4 90", "\xF4\x90\x80\x80", false, false, 1},
        {"lead F5", "\xF5\x80\x80\x80", false, false, 0},
        {"lead FF", "\xFF", false, false, 0},
        {"stray continuation", "a\x80", false, false, 1},
        {"bad continuation", "\xC2\x41", false, false, 1},
        {"new lead inside a character", "\xE2\x82\xE2\x82\xAC", false, false, 2},
        {"invalid after a long ascii run", std::string(20, 'a') + "\xFF" + std::string(20, 'b'), false, false, 20},
        {"truncated 2-byte", "\xC2", false, true},
        {"truncated 3-byte", "ab\xE2\x82", false, true},
        {"truncated 4-byte", "\xF0\x9F\x98", false, true},
    };
}

TEST(Utf8Validator, WholeInput) {
    for (const auto& c : cases()) {
        SCOPED_TRACE("case: " + c.name);
        Utf8Validator v;
        EXPECT_EQ(v.feed(c.bytes), c.prefix_ok);
        if (!c.prefix_ok) {
            EXPECT_EQ(v.error_index(), c.error_index);
        }
        EXPECT_EQ(v.complete(), c.valid);
        EXPECT_EQ(is_valid_utf8(c.bytes), c.valid);
    }
}

TEST(Utf8Validator, OneByteAtATimeFailsOnTheFirstBadByte) {
    for (const auto& c : cases()) {
        SCOPED_TRACE("case: " + c.name);
        Utf8Validator v;
        size_t failed_at = c.bytes.size();
        for (size_t i = 0; i < c.bytes.size(); ++i) {
            if (!v.feed(c.bytes.substr(i, 1))) {
                failed_at = i;
                break;
            }
        }
        EXPECT_EQ(failed_at, c.prefix_ok ? c.bytes.size() : c.error_index);
        EXPECT_EQ(v.complete(), c.valid);
    }
}

TEST(Utf8Validator, EverySplitPoint) {
    for (const auto& c : cases()) {
        for (size_t cut = 0; cut <= c.bytes.size(); ++cut) {
            SCOPED_TRACE("case: " + c.name + ", split at " + std::to_string(cut));
            Utf8Validator v;
            const bool ok = v.feed(c.bytes.substr(0, cut)) && v.feed(c.bytes.substr(cut));
            EXPECT_EQ(ok, c.prefix_ok);
            EXPECT_EQ(v.complete(), c.valid);
        }
    }
}

TEST(Utf8Validator, FailureIsStickyUntilReset) {
    Utf8Validator v;
    EXPECT_FALSE(v.feed("\xFF"));
    EXPECT_FALSE(v.feed("abc")) << "a failed validator must stay failed";
    EXPECT_FALSE(v.complete());
    v.reset();
    EXPECT_TRUE(v.feed("abc"));
    EXPECT_TRUE(v.complete());
}

TEST(Utf8Validator, ResetDropsAnUnfinishedCharacter) {
    Utf8Validator v;
    EXPECT_TRUE(v.feed("\xE2\x82"));
    EXPECT_FALSE(v.complete());
    v.reset();
    EXPECT_TRUE(v.complete());
    EXPECT_FALSE(v.feed("\xAC")) << "after reset a continuation byte is a stray";
}

TEST(Utf8Validator, AllTwoByteLeadsAgainstTheStandardsTable) {
    for (int lead = 0x80; lead <= 0xFF; ++lead) {
        const bool lead_ok = lead >= 0xC2 && lead <= 0xF4;
        Utf8Validator v;
        EXPECT_EQ(v.feed(std::string(1, static_cast<char>(lead))), lead_ok) << "lead byte 0x" << std::hex << lead;
    }
}

}  // namespace
}  // namespace herald
