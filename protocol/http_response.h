// Serialises complete HTTP/1.1 responses; every rejection is a full response with a short text body.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald {

std::string_view http_reason_phrase(int status);

struct HttpResponse {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Length and Connection
    std::string body;
    std::string content_type = "text/plain; charset=utf-8";
    bool close = true;  // Connection: close

    std::string serialize() const;
};

// A short text/plain response, body ending in "\n".
HttpResponse text_response(int status, std::string_view body);

}  // namespace herald
