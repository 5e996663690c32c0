// Incremental UTF-8 validator (RFC 3629): fails on the first invalid byte, across any split of the input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace herald {

class Utf8Validator {
public:
    // False as soon as the bytes so far cannot be the prefix of valid UTF-8 (overlongs, surrogates, > U+10FFFF).
    // Once false, every later call is false until reset().
    bool feed(std::string_view bytes);
    // True when the input so far ends on a character boundary (call at the end of a message).
    bool complete() const { return state_ == 0; }
    void reset() {
        state_ = 0;
        lower_ = 0x80;
        upper_ = 0xBF;
        error_index_ = 0;
    }
    // After feed() returned false: index of the first invalid byte within the bytes of that call.
    size_t error_index() const { return error_index_; }

private:
    static constexpr uint32_t kFailed = 0xFF;
    uint32_t state_ = 0;  // continuation bytes still expected, or kFailed
    uint8_t lower_ = 0x80, upper_ = 0xBF;  // allowed range of the next continuation byte
    size_t error_index_ = 0;
};

bool is_valid_utf8(std::string_view bytes);

}  // namespace herald
