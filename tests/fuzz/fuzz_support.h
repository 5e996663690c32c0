// Helpers shared by the fuzz targets: how the first input bytes choose read splits, a failed-invariant abort, and an
// independent UTF-8 check to hold the parsers' output against. Deterministic: no clock, no global random state.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

// An invariant the target checks on top of the sanitizers. A failure is a finding: it prints what was expected
// and aborts, which libFuzzer records as a crash and the corpus replay reports as a failed test.
#define FUZZ_CHECK(condition, what)                                                                    \
    do {                                                                                               \
        if (!(condition)) {                                                                            \
            std::fprintf(stderr, "%s:%d: invariant failed: %s (%s)\n", __FILE__, __LINE__, (what), #condition); \
            std::abort();                                                                              \
        }                                                                                              \
    } while (0)

namespace herald::fuzz {

// Read sizes for one input, derived from one control byte: the low two bits pick the shape (one byte at a time,
// small pieces, medium pieces, a mix that includes empty reads), the rest seed a xorshift generator.
class Splitter {
public:
    explicit Splitter(uint8_t control) : mode_(control & 3u), state_(0x9E3779B97F4A7C15ULL ^ (control >> 2)) {}

    // The size of the next read; never more than `left`. May be 0 (an empty read) in the mixed mode only.
    size_t next(size_t left) {
        size_t size = 1;
        switch (mode_) {
            case 0: size = 1; break;
            case 1: size = 1 + next_random() % 16; break;
            case 2: size = 1 + next_random() % 512; break;
            default: {
                const uint64_t r = next_random();
                if (r % 8 == 0) {
                    size = 0;
                } else if (r % 8 < 5) {
                    size = 1 + (r >> 8) % 8;
                } else {
                    size = 1 + (r >> 8) % 4096;
                }
                break;
            }
        }
        return size < left ? size : left;
    }

    uint64_t next_random() {
        state_ ^= state_ << 13;
        state_ ^= state_ >> 7;
        state_ ^= state_ << 17;
        return state_;
    }

private:
    uint8_t mode_;
    uint64_t state_;
};

// Strict UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF), written independently of
// protocol/utf8.cpp so the two can be compared. Returns true when `text` is valid and complete. Otherwise
// `first_bad` is the index of the first byte that no valid text could continue with — where an incremental
// validator must stop — or text.size() with `truncated` set when the text merely ends inside a character.
inline bool reference_utf8(std::string_view text, size_t* first_bad = nullptr, bool* truncated = nullptr) {
    const size_t n = text.size();
    auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
    auto bad_at = [&](size_t k, bool cut) {
        if (first_bad != nullptr) *first_bad = k;
        if (truncated != nullptr) *truncated = cut;
        return false;
    };
    size_t i = 0;
    while (i < n) {
        const uint8_t b = byte(i);
        if (b < 0x80) {
            ++i;
            continue;
        }
        uint32_t length = 0;
        uint32_t code = 0;
        if (b >= 0xC2 && b <= 0xDF) {
            length = 2;
            code = b & 0x1F;
        } else if (b >= 0xE0 && b <= 0xEF) {
            length = 3;
            code = b & 0x0F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            length = 4;
            code = b & 0x07;
        } else {
            return bad_at(i, false);  // a continuation byte, C0/C1 (always overlong) or F5..FF
        }
        for (uint32_t k = 1; k < length; ++k) {
            if (i + k >= n) return bad_at(n, true);
            const uint8_t c = byte(i + k);
            if ((c & 0xC0) != 0x80) return bad_at(i + k, false);
            code = (code << 6) | (c & 0x3F);
            if (k == 1) {
                // With the second byte the range of every completion is known: decide overlong/surrogate/too big.
                const uint32_t shift = 6 * (length - 2);
                const uint32_t low = code << shift;
                const uint32_t high = low | ((1u << shift) - 1u);
                const uint32_t min_for_length = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000;
                const bool overlong = high < min_for_length;
                const bool too_big = low > 0x10FFFF;
                const bool surrogate = length == 3 && low >= 0xD800 && high <= 0xDFFF;
                if (overlong || too_big || surrogate) return bad_at(i + 1, false);
            }
        }
        i += length;
    }
    if (first_bad != nullptr) *first_bad = n;
    if (truncated != nullptr) *truncated = false;
    return true;
}

}  // namespace herald::fuzz
