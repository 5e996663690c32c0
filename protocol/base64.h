// Base64 (RFC 4648, standard alphabet, padded) and the RFC 6455 Sec-WebSocket-Accept derivation.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace herald {

std::string base64_encode(std::string_view bytes);
// Strict decode: rejects characters outside the alphabet, bad padding and lengths not a multiple of 4.
std::optional<std::string> base64_decode(std::string_view text);
// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
std::string websocket_accept_key(std::string_view client_key);

}  // namespace herald
