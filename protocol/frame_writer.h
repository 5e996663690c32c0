// Server-to-client RFC 6455 frames (never masked). Each returns the whole frame, header and payload, ready for
// the wire, so one encoded frame can be shared by every subscriber.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/close_code.h"

namespace herald {

enum class Opcode : uint8_t { Continuation = 0x0, Text = 0x1, Binary = 0x2, Close = 0x8, Ping = 0x9, Pong = 0xA };

std::string encode_frame(Opcode opcode, std::string_view payload);
inline std::string encode_text_frame(std::string_view payload) { return encode_frame(Opcode::Text, payload); }
// Close frame with a 2-byte code and a reason (truncated at a UTF-8 boundary so the payload stays ≤ 125 bytes).
// NoStatus yields an empty close payload.
std::string encode_close_frame(CloseCode code, std::string_view reason = {});
// Size of the frame header that encode_frame puts in front of a payload of this length.
size_t frame_header_size(size_t payload_length);

}  // namespace herald
