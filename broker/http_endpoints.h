// Plain HTTP on the WebSocket port: health, readiness, Prometheus metrics and the server API (publish, history).
#pragma once
#include <cstdint>

#include "protocol/http_request.h"

namespace herald {

class Server;
class Hub;
class Connection;

class HttpEndpoints {
public:
    HttpEndpoints(Server& server, Hub& hub) : server_(server), hub_(hub) {}
    // Answers now through connection.respond_http, or later (API calls wait for the backplane).
    void handle(Connection& connection, const HttpRequest& request);

private:
    void publish(Connection& connection, const HttpRequest& request);
    void history(Connection& connection, const HttpRequest& request);
    bool authorized(const HttpRequest& request) const;

    Server& server_;
    Hub& hub_;
};

}  // namespace herald
