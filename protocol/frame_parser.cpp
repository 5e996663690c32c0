// Incremental RFC 6455 parser for client frames. Header bytes are checked one at a time so a violation is reported
// at the byte that commits it; payloads are unmasked in place and copied only when a frame or message spans reads.
#include "protocol/frame_parser.h"

#include <algorithm>
#include <cstring>

namespace herald {
namespace {

constexpr uint8_t kFin = 0x80;
constexpr uint8_t kRsvBits = 0x70;
constexpr uint8_t kOpcodeBits = 0x0F;
constexpr uint8_t kMaskBit = 0x80;
constexpr uint8_t kLengthBits = 0x7F;
constexpr uint8_t kLength16 = 126;
constexpr uint8_t kLength64 = 127;
constexpr size_t kMaxControlPayload = 125;

constexpr uint8_t kOpContinuation = 0x0;
constexpr uint8_t kOpText = 0x1;
constexpr uint8_t kOpBinary = 0x2;
constexpr uint8_t kOpClose = 0x8;
constexpr uint8_t kOpPing = 0x9;
constexpr uint8_t kOpPong = 0xA;

bool is_control(uint8_t opcode) { return (opcode & 0x8) != 0; }

size_t extended_length_bytes(uint8_t length7) {
    if (length7 == kLength16) return 2;
    if (length7 == kLength64) return 8;
    return 0;
}

// XOR with the 4-byte key, eight bytes at a time; `phase` is how many payload bytes of the frame came before.
void unmask(char* data, size_t n, const uint8_t (&mask)[4], uint64_t phase) {
    uint8_t pattern[8];
    for (size_t k = 0; k < 8; ++k) pattern[k] = mask[(phase + k) & 3];
    uint64_t wide;
    std::memcpy(&wide, pattern, sizeof wide);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t word;
        std::memcpy(&word, data + i, sizeof word);
        word ^= wide;
        std::memcpy(data + i, &word, sizeof word);
    }
    for (; i < n; ++i) data[i] = static_cast<char>(static_cast<uint8_t>(data[i]) ^ pattern[i & 7]);
}

FrameError make_error(ProtocolError error, size_t offset, std::string_view detail) { return {error, offset, detail}; }

}  // namespace

FrameParser::FrameParser(FrameLimits limits) : limits_(limits) {}

size_t FrameParser::header_size() const {
    return 2 + extended_length_bytes(header_[1] & kLengthBits) + 4;
}

uint64_t FrameParser::declared_length() const {
    const uint8_t length7 = header_[1] & kLengthBits;
    const size_t extra = extended_length_bytes(length7);
    if (extra == 0) return length7;
    uint64_t length = 0;
    for (size_t i = 0; i < extra; ++i) length = (length << 8) | header_[2 + i];
    return length;
}

std::optional<FrameError> FrameParser::check_header_byte(size_t offset) const {
    const size_t index = header_len_ - 1u;
    const uint8_t b = header_[index];
    if (index == 0) {
        const uint8_t opcode = b & kOpcodeBits;
        // No extension is negotiated, so any RSV bit is a violation (RFC 6455 5.2).
        if ((b & kRsvBits) != 0) return make_error(ProtocolError::FrameProtocol, offset, "reserved bits set");
        if ((opcode >= 0x3 && opcode <= 0x7) || opcode >= 0xB) {
            return make_error(ProtocolError::FrameProtocol, offset, "reserved opcode");
        }
        if (is_control(opcode) && (b & kFin) == 0) {
            return make_error(ProtocolError::FrameProtocol, offset, "fragmented control frame");
        }
        if (opcode == kOpContinuation && !in_message_) {
            return make_error(ProtocolError::FrameProtocol, offset, "continuation without a message");
        }
        if ((opcode == kOpText || opcode == kOpBinary) && in_message_) {
            return make_error(ProtocolError::FrameProtocol, offset, "new message inside a fragmented message");
        }
        // herald.v1.json is text only: refuse at the header rather than buffer a payload nobody will read.
        if (opcode == kOpBinary) return make_error(ProtocolError::BinaryMessage, offset, "binary message");
        return std::nullopt;
    }
    const uint8_t opcode = header_[0] & kOpcodeBits;
    const uint8_t length7 = header_[1] & kLengthBits;
    if (index == 1) {
        if ((b & kMaskBit) == 0) return make_error(ProtocolError::FrameProtocol, offset, "unmasked client frame");
        if (is_control(opcode) && length7 > kMaxControlPayload) {
            return make_error(ProtocolError::FrameProtocol, offset, "control frame payload over 125 bytes");
        }
        if (opcode == kOpClose && length7 == 1) {
            return make_error(ProtocolError::FrameProtocol, offset, "close frame with a 1-byte payload");
        }
    }
    if (index == 2 && length7 == kLength64 && (b & 0x80) != 0) {
        return make_error(ProtocolError::FrameProtocol, offset, "64-bit length with the high bit set");
    }
    // Decide on the size at the last length byte, before a single payload byte is buffered.
    if (index == 1 + extended_length_bytes(length7) && !is_control(opcode)) {
        if (declared_length() > limits_.max_message_size - message_.size()) {
            return make_error(ProtocolError::FrameTooBig, offset, "message over the size limit");
        }
    }
    return std::nullopt;
}

void FrameParser::begin_frame() {
    fin_ = (header_[0] & kFin) != 0;
    opcode_ = header_[0] & kOpcodeBits;
    remaining_ = declared_length();
    std::memcpy(mask_, header_ + header_len_ - 4, sizeof mask_);
    mask_offset_ = 0;
    header_len_ = 0;
    in_frame_ = true;
    if (opcode_ == kOpText) {
        utf8_.reset();
        in_message_ = !fin_;
    }
}

Result<size_t, FrameError> FrameParser::failed(ProtocolError error, size_t offset, std::string_view detail) {
    error_ = make_error(error, offset, detail);
    return fail(*error_);
}

Result<size_t, FrameError> FrameParser::feed(std::span<char> bytes, FrameSink& sink) {
    if (error_) return fail(*error_);
    if (closed_) return size_t{0};
    const size_t size = bytes.size();
    size_t pos = 0;
    while (true) {
        while (!in_frame_ && pos < size) {
            header_[header_len_++] = static_cast<uint8_t>(bytes[pos]);
            if (auto error = check_header_byte(pos)) {
                error_ = *error;
                return fail(*error_);
            }
            ++pos;
            if (header_len_ >= 2 && header_len_ == header_size()) begin_frame();
        }
        if (!in_frame_) return pos;

        const auto available = static_cast<size_t>(std::min<uint64_t>(remaining_, size - pos));
        char* chunk = bytes.data() + pos;
        // The frame is here whole and untouched by earlier reads: it can be handed over without a copy.
        const bool whole = mask_offset_ == 0 && available == remaining_;
        unmask(chunk, available, mask_, mask_offset_);
        mask_offset_ += available;
        remaining_ -= available;

        if (!is_control(opcode_)) {
            if (available > 0 && !utf8_.feed(std::string_view(chunk, available))) {
                return failed(ProtocolError::InvalidUtf8, pos + utf8_.error_index(), "invalid UTF-8 in text");
            }
            pos += available;
            const bool in_place = whole && fin_ && opcode_ == kOpText;
            if (!in_place) message_.append(chunk, available);
            if (remaining_ > 0) return pos;
            in_frame_ = false;
            if (!fin_) continue;
            in_message_ = false;
            if (!utf8_.complete()) {
                return failed(ProtocolError::InvalidUtf8, pos - 1, "text ends inside a UTF-8 sequence");
            }
            const SinkResult result = sink.on_text(in_place ? std::string_view(chunk, available) : message_);
            message_.clear();
            if (result == SinkResult::Stop) return pos;
            continue;
        }

        pos += available;
        if (!whole) control_.append(chunk, available);
        if (remaining_ > 0) return pos;
        in_frame_ = false;
        const std::string_view payload = whole ? std::string_view(chunk, available) : std::string_view(control_);
        SinkResult result = SinkResult::Continue;
        if (opcode_ == kOpPing) {
            result = sink.on_ping(payload);
        } else if (opcode_ == kOpPong) {
            result = sink.on_pong(payload);
        } else {
            CloseCode code = CloseCode::NoStatus;
            std::string_view reason;
            if (!payload.empty()) {
                const auto value = static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                                                         static_cast<uint8_t>(payload[1]));
                if (!is_valid_received_close_code(value)) {
                    return failed(ProtocolError::FrameProtocol, pos - 1, "invalid close code");
                }
                reason = payload.substr(2);
                if (!is_valid_utf8(reason)) {
                    return failed(ProtocolError::InvalidUtf8, pos - 1, "close reason is not UTF-8");
                }
                code = static_cast<CloseCode>(value);
            }
            closed_ = true;
            sink.on_close(code, reason);
            result = SinkResult::Stop;
        }
        control_.clear();
        if (result == SinkResult::Stop) return pos;
    }
}

size_t FrameParser::buffered_bytes() const { return header_len_ + message_.size() + control_.size(); }

size_t FrameParser::buffer_capacity() const { return message_.capacity() + control_.capacity(); }

void FrameParser::shrink_idle() {
    if (message_.empty()) std::string().swap(message_);
    if (control_.empty()) std::string().swap(control_);
}

}  // namespace herald
