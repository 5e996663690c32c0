// Server-to-client frames: always FIN, never masked (RFC 6455 5.1), length in the shortest of the three forms.
#include "protocol/frame_writer.h"

#include <cstddef>

namespace herald {
namespace {

constexpr size_t kMaxControlPayload = 125;

void append_header(std::string& out, Opcode opcode, size_t length) {
    out += static_cast<char>(0x80 | static_cast<uint8_t>(opcode));
    if (length < 126) {
        out += static_cast<char>(length);
    } else if (length <= 0xFFFF) {
        out += static_cast<char>(126);
        out += static_cast<char>((length >> 8) & 0xFF);
        out += static_cast<char>(length & 0xFF);
    } else {
        out += static_cast<char>(127);
        const uint64_t wide = length;
        for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((wide >> shift) & 0xFF);
    }
}

// Longest prefix of at most `limit` bytes that does not end inside a multi-byte character.
std::string_view truncate_utf8(std::string_view text, size_t limit) {
    if (text.size() <= limit) return text;
    size_t cut = limit;
    while (cut > 0 && (static_cast<uint8_t>(text[cut]) & 0xC0) == 0x80) --cut;
    return text.substr(0, cut);
}

}  // namespace

size_t frame_header_size(size_t payload_length) {
    if (payload_length < 126) return 2;
    if (payload_length <= 0xFFFF) return 4;
    return 10;
}

std::string encode_frame(Opcode opcode, std::string_view payload) {
    std::string out;
    out.reserve(frame_header_size(payload.size()) + payload.size());
    append_header(out, opcode, payload.size());
    out.append(payload);
    return out;
}

std::string encode_close_frame(CloseCode code, std::string_view reason) {
    if (code == CloseCode::NoStatus) return encode_frame(Opcode::Close, {});
    const std::string_view kept = truncate_utf8(reason, kMaxControlPayload - 2);
    const auto value = static_cast<uint16_t>(code);
    std::string payload;
    payload.reserve(2 + kept.size());
    payload += static_cast<char>(value >> 8);
    payload += static_cast<char>(value & 0xFF);
    payload.append(kept);
    return encode_frame(Opcode::Close, payload);
}

}  // namespace herald
