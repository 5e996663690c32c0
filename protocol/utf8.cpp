// UTF-8 validation for WebSocket text: frames arrive in arbitrary pieces and a bad byte must close the connection
// at once (RFC 6455 8.1), so the validator carries the state of an unfinished character between calls.
#include "protocol/utf8.h"

#include <cstring>

namespace herald {

bool Utf8Validator::feed(std::string_view bytes) {
    if (state_ == kFailed) {
        error_index_ = 0;
        return false;
    }
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    const size_t n = bytes.size();
    size_t i = 0;
    while (i < n) {
        if (state_ == 0) {
            // Chat text is mostly ASCII: skip eight plain bytes at a time.
            while (i + 8 <= n) {
                uint64_t word;
                std::memcpy(&word, p + i, sizeof word);
                if ((word & 0x8080808080808080ULL) != 0) break;
                i += 8;
            }
            if (i == n) break;
            uint8_t b = p[i];
            // Table 3-7 of the Unicode standard: the lead byte fixes the count and the range of the first
            // continuation byte, which is where overlongs, surrogates and values above U+10FFFF are excluded.
            if (b < 0x80) {
                ++i;
                continue;
            } else if (b >= 0xC2 && b <= 0xDF) {
                state_ = 1;
                lower_ = 0x80, upper_ = 0xBF;
            } else if (b == 0xE0) {
                state_ = 2;
                lower_ = 0xA0, upper_ = 0xBF;
            } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
                state_ = 2;
                lower_ = 0x80, upper_ = 0xBF;
            } else if (b == 0xED) {
                state_ = 2;
                lower_ = 0x80, upper_ = 0x9F;
            } else if (b == 0xF0) {
                state_ = 3;
                lower_ = 0x90, upper_ = 0xBF;
            } else if (b >= 0xF1 && b <= 0xF3) {
                state_ = 3;
                lower_ = 0x80, upper_ = 0xBF;
            } else if (b == 0xF4) {
                state_ = 3;
                lower_ = 0x80, upper_ = 0x8F;
            } else {  // 0x80..0xC1 (stray continuation, overlong 2-byte lead) and 0xF5..0xFF
                state_ = kFailed;
                error_index_ = i;
                return false;
            }
            ++i;
        } else {
            uint8_t b = p[i];
            if (b < lower_ || b > upper_) {
                state_ = kFailed;
                error_index_ = i;
                return false;
            }
            lower_ = 0x80, upper_ = 0xBF;
            --state_;
            ++i;
        }
    }
    return true;
}

bool is_valid_utf8(std::string_view bytes) {
    Utf8Validator validator;
    return validator.feed(bytes) && validator.complete();
}

}  // namespace herald
