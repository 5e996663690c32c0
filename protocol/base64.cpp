// Base64 for the WebSocket handshake: decoding the client's Sec-WebSocket-Key and encoding the accept hash.
// Decoding is strict because a key that only decodes under lenient rules is a malformed handshake, not a key.
#include "protocol/base64.h"

#include <openssl/evp.h>

#include <array>
#include <cstdint>

namespace herald {
namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr uint8_t kInvalid = 0xFF;

constexpr std::array<uint8_t, 256> make_decode_table() {
    std::array<uint8_t, 256> table{};
    for (auto& entry : table) entry = kInvalid;
    for (size_t i = 0; i < kAlphabet.size(); ++i) table[static_cast<uint8_t>(kAlphabet[i])] = static_cast<uint8_t>(i);
    return table;
}
constexpr std::array<uint8_t, 256> kDecodeTable = make_decode_table();

}  // namespace

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        uint32_t group = (uint32_t{static_cast<uint8_t>(bytes[i])} << 16) |
                         (uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8) | static_cast<uint8_t>(bytes[i + 2]);
        out += kAlphabet[(group >> 18) & 0x3F];
        out += kAlphabet[(group >> 12) & 0x3F];
        out += kAlphabet[(group >> 6) & 0x3F];
        out += kAlphabet[group & 0x3F];
    }
    size_t rest = bytes.size() - i;
    if (rest > 0) {
        uint32_t group = uint32_t{static_cast<uint8_t>(bytes[i])} << 16;
        if (rest == 2) group |= uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8;
        out += kAlphabet[(group >> 18) & 0x3F];
        out += kAlphabet[(group >> 12) & 0x3F];
        out += rest == 2 ? kAlphabet[(group >> 6) & 0x3F] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (size_t i = 0; i < text.size(); i += 4) {
        bool last_group = i + 4 == text.size();
        size_t padding = 0;
        if (last_group) {
            if (text[i + 3] == '=') padding = text[i + 2] == '=' ? 2 : 1;
        }
        uint32_t group = 0;
        for (size_t k = 0; k < 4 - padding; ++k) {
            uint8_t value = kDecodeTable[static_cast<uint8_t>(text[i + k])];
            if (value == kInvalid) return std::nullopt;  // also catches '=' anywhere but the final padding
            group |= uint32_t{value} << (18 - 6 * k);
        }
        out += static_cast<char>((group >> 16) & 0xFF);
        // Non-zero bits under the padding would mean two different texts decode to the same bytes: not canonical.
        if (padding == 2) {
            if ((group & 0xFFFF) != 0) return std::nullopt;
            continue;
        }
        out += static_cast<char>((group >> 8) & 0xFF);
        if (padding == 1) {
            if ((group & 0xFF) != 0) return std::nullopt;
            continue;
        }
        out += static_cast<char>(group & 0xFF);
    }
    return out;
}

std::string websocket_accept_key(std::string_view client_key) {
    std::string input;
    input.reserve(client_key.size() + kWebSocketGuid.size());
    input.append(client_key).append(kWebSocketGuid);
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int digest_len = 0;
    if (EVP_Digest(input.data(), input.size(), digest.data(), &digest_len, EVP_sha1(), nullptr) != 1) {
        // No SHA-1 (e.g. a FIPS provider refusing it): an empty accept makes the client fail the handshake.
        return {};
    }
    return base64_encode(std::string_view(reinterpret_cast<const char*>(digest.data()), digest_len));
}

}  // namespace herald
