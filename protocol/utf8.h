// Incremental UTF-8 validator (RFC 3629): fails on the first invalid byte, across any split of the input.
#pragma once
#include <cstdint>
#include <string_view>

namespace herald {

class Utf8Validator {
public:
    // False as soon as the bytes so far cannot be the prefix of valid UTF-8 (overlongs, surrogates, > U+10FFFF).
    bool feed(std::string_view bytes);
    // True when the input so far ends on a character boundary (call at the end of a message).
    bool complete() const { return state_ == 0; }
    void reset() { state_ = 0; }

private:
    uint32_t state_ = 0;
    uint8_t lower_ = 0x80, upper_ = 0xBF;  // allowed range of the next continuation byte
};

bool is_valid_utf8(std::string_view bytes);

}  // namespace herald
