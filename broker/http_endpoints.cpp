// Routes and answers the node's HTTP endpoints. API errors are JSON {"code","message"} with the matching status.
#include "broker/http_endpoints.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <nlohmann/json.hpp>

#include "broker/connection.h"
#include "broker/hub.h"
#include "broker/server.h"
#include "broker/static_assets.h"
#include "protocol/channel_name.h"

namespace herald {
namespace {

HttpResponse json_response(int status, const nlohmann::json& body) {
    HttpResponse response;
    response.status = status;
    response.content_type = "application/json";
    response.body = body.dump() + "\n";
    return response;
}

HttpResponse api_error(int status, std::string_view code, std::string_view message) {
    return json_response(status, {{"code", code}, {"message", message}});
}

HttpResponse method_not_allowed(std::string_view allow) {
    HttpResponse response = text_response(405, "method not allowed");
    response.headers.emplace_back("Allow", std::string(allow));
    return response;
}

int status_for(const BackplaneError& e) { return e.kind == BackplaneErrorKind::Unavailable ? 503 : 500; }
std::string_view code_for(const BackplaneError& e) {
    return e.kind == BackplaneErrorKind::Unavailable ? "unavailable" : "internal";
}

std::optional<uint64_t> parse_u64(const std::string& text) {
    if (text.empty() || text.size() > 19) return std::nullopt;
    uint64_t value = 0;
    for (char ch : text) {
        if (ch < '0' || ch > '9') return std::nullopt;
        value = value * 10 + static_cast<uint64_t>(ch - '0');
    }
    return value;
}

using Digest = std::array<unsigned char, EVP_MAX_MD_SIZE>;

Digest sha256(std::string_view text) {
    Digest out{};
    unsigned int size = 0;
    EVP_Digest(text.data(), text.size(), out.data(), &size, EVP_sha256(), nullptr);
    return out;
}

HttpResponse unauthorized_response() {
    HttpResponse response = api_error(401, "unauthorized", "missing or wrong bearer API key");
    response.headers.emplace_back("WWW-Authenticate", "Bearer");
    return response;
}

}  // namespace

bool HttpEndpoints::authorized(const HttpRequest& request) const {
    const std::string& key = server_.config().api_key;
    if (key.empty()) return true;
    const std::string* header = request.header("Authorization");
    static constexpr std::string_view kBearer = "Bearer ";
    if (!header || header->size() < kBearer.size()) return false;
    std::string_view scheme(header->data(), kBearer.size());
    for (size_t i = 0; i < kBearer.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(scheme[i])) != std::tolower(static_cast<unsigned char>(kBearer[i])))
            return false;
    std::string_view given = std::string_view(*header).substr(kBearer.size());
    // Both sides are hashed first, so the comparison takes the same time whatever was sent: timing reveals neither
    // a matching prefix nor the key's length.
    const Digest expected = sha256(key), presented = sha256(given);
    return CRYPTO_memcmp(expected.data(), presented.data(), 32) == 0;
}

void HttpEndpoints::handle(Connection& connection, const HttpRequest& request) {
    const std::string& path = request.path;
    const bool get = request.method == "GET" || request.method == "HEAD";
    if (path == "/healthz") {
        connection.respond_http(get ? text_response(200, "ok") : method_not_allowed("GET"));
    } else if (path == "/readyz") {
        if (!get) return connection.respond_http(method_not_allowed("GET"));
        auto not_ready = server_.not_ready_reason();
        connection.respond_http(not_ready ? text_response(503, *not_ready) : text_response(200, "ready"));
    } else if (path == "/metrics") {
        if (!get) return connection.respond_http(method_not_allowed("GET"));
        HttpResponse response;
        response.content_type = "text/plain; version=0.0.4; charset=utf-8";
        response.body = server_.metrics_text();
        connection.respond_http(response);
    } else if (path == "/api/publish") {
        if (request.method != "POST") return connection.respond_http(method_not_allowed("POST"));
        publish(connection, request);
    } else if (path == "/api/history") {
        if (!get) return connection.respond_http(method_not_allowed("GET"));
        history(connection, request);
    } else if (auto asset = static_asset(request, StaticAssetOptions{server_.config().demo})) {
        connection.respond_http(get ? *asset : method_not_allowed("GET"));
    } else {
        server_.metrics().handshake_failures.increment("not_found");
        connection.respond_http(text_response(404, "not found"));
    }
}

void HttpEndpoints::publish(Connection& connection, const HttpRequest& request) {
    if (!authorized(request)) {
        server_.metrics().auth_failures.increment("api_key");
        return connection.respond_http(unauthorized_response());
    }
    nlohmann::json body = nlohmann::json::parse(request.body, nullptr, false);
    if (body.is_discarded() || !body.is_object())
        return connection.respond_http(api_error(400, "bad_request", "body must be a JSON object"));
    auto channel = body.find("channel");
    if (channel == body.end() || !channel->is_string())
        return connection.respond_http(api_error(400, "bad_request", "\"channel\" must be a string"));
    if (!is_valid_channel_name(channel->get_ref<const std::string&>()))
        return connection.respond_http(
            api_error(400, "invalid_channel", "channel must be 1-255 characters of A-Za-z0-9_-.:@/="));
    auto data = body.find("data");
    if (data == body.end()) return connection.respond_http(api_error(400, "bad_request", "\"data\" is required"));
    std::optional<std::string> key;
    if (auto k = body.find("key"); k != body.end()) {
        if (!k->is_string() || k->get_ref<const std::string&>().empty() || k->get_ref<const std::string&>().size() > 128)
            return connection.respond_http(api_error(400, "bad_request", "\"key\" must be a string of 1-128 characters"));
        key = k->get<std::string>();
    }
    std::string data_json = data->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::string name = channel->get<std::string>();
    hub_.publish(name, std::move(data_json), std::move(key),
                 [&server = server_, id = connection.id(), name](auto result) {
                     Connection* c = server.find_connection(id);
                     if (!c) return;
                     if (!result.ok())
                         return c->respond_http(
                             api_error(status_for(result.error()), code_for(result.error()), result.error().detail));
                     c->respond_http(json_response(200, {{"channel", name},
                                                         {"serial", result.value().serial},
                                                         {"epoch", result.value().epoch},
                                                         {"duplicate", result.value().duplicate}}));
                 });
}

void HttpEndpoints::history(Connection& connection, const HttpRequest& request) {
    if (!authorized(request)) {
        server_.metrics().auth_failures.increment("api_key");
        return connection.respond_http(unauthorized_response());
    }
    auto channel = request.query_param("channel");
    if (!channel) return connection.respond_http(api_error(400, "bad_request", "query parameter channel is required"));
    if (!is_valid_channel_name(*channel))
        return connection.respond_http(
            api_error(400, "invalid_channel", "channel must be 1-255 characters of A-Za-z0-9_-.:@/="));
    std::optional<uint64_t> since, limit;
    if (auto text = request.query_param("since")) {
        since = parse_u64(*text);
        if (!since) return connection.respond_http(api_error(400, "bad_request", "since must be a whole number"));
    }
    if (auto text = request.query_param("limit")) {
        limit = parse_u64(*text);
        if (!limit) return connection.respond_http(api_error(400, "bad_request", "limit must be a whole number"));
    }
    hub_.history(*channel, since, limit, [&server = server_, id = connection.id(), name = *channel](auto result) {
        Connection* c = server.find_connection(id);
        if (!c) return;
        if (!result.ok())
            return c->respond_http(api_error(status_for(result.error()), code_for(result.error()), result.error().detail));
        nlohmann::json messages = nlohmann::json::array();
        for (const auto& m : result.value().messages)
            messages.push_back({{"serial", m.serial}, {"data", nlohmann::json::parse(m.data, nullptr, false)}});
        c->respond_http(json_response(200, {{"channel", name},
                                            {"epoch", result.value().epoch},
                                            {"serial", result.value().top},
                                            {"messages", std::move(messages)}}));
    });
}

}  // namespace herald
