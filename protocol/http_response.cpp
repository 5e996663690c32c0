// HTTP/1.1 response serialisation for the handshake and the node's endpoints. One request per connection, so every
// response is complete on its own: explicit Content-Length, and Connection: close unless it is the 101 upgrade.
#include "protocol/http_response.h"

namespace herald {
namespace {

// 1xx and 204 responses must not carry a body or Content-Length (RFC 9110 8.6).
bool status_has_body(int status) { return !(status >= 100 && status < 200) && status != 204 && status != 304; }

// Header text never contains CR or LF: a stray one would let a value start a header or a body of its own.
void append_field_text(std::string& out, std::string_view text) {
    for (char c : text) {
        if (c != '\r' && c != '\n') out += c;
    }
}

}  // namespace

std::string_view http_reason_phrase(int status) {
    switch (status) {
        case 100: return "Continue";
        case 101: return "Switching Protocols";
        case 200: return "OK";
        case 201: return "Created";
        case 202: return "Accepted";
        case 204: return "No Content";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 304: return "Not Modified";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 411: return "Length Required";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 415: return "Unsupported Media Type";
        case 426: return "Upgrade Required";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
    }
}

std::string HttpResponse::serialize() const {
    std::string out;
    out.reserve(128 + body.size());
    out += "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out += http_reason_phrase(status);
    out += "\r\n";
    const bool has_body = status_has_body(status);
    if (has_body && !body.empty() && !content_type.empty()) {
        out += "Content-Type: ";
        append_field_text(out, content_type);
        out += "\r\n";
    }
    if (has_body) {
        out += "Content-Length: ";
        out += std::to_string(body.size());
        out += "\r\n";
    }
    if (close) out += "Connection: close\r\n";
    for (const auto& [name, value] : headers) {
        append_field_text(out, name);
        out += ": ";
        append_field_text(out, value);
        out += "\r\n";
    }
    out += "\r\n";
    if (has_body) out += body;
    return out;
}

HttpResponse text_response(int status, std::string_view body) {
    HttpResponse response;
    response.status = status;
    response.body.assign(body);
    if (response.body.empty() || response.body.back() != '\n') response.body += '\n';
    return response;
}

}  // namespace herald
