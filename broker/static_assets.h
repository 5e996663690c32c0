// The web assets compiled into the node (cmake/EmbedFiles.cmake): the JavaScript SDK at /sdk/ and the demo page at
// /demo/. Pure routing — path and request headers in, response out.
#pragma once
#include <optional>
#include <string_view>

#include "protocol/http_request.h"
#include "protocol/http_response.h"

namespace herald {

struct StaticAssetOptions {
    bool demo = true;  // --no-demo: /demo/ answers 404
};

// The response for `request.path` if it names an asset route (/, /demo, /demo/…, /sdk/…), else nullopt; the caller
// answers methods other than GET with 405. Answers 304 when If-None-Match carries the asset's ETag.
std::optional<HttpResponse> static_asset(const HttpRequest& request, const StaticAssetOptions& options);

}  // namespace herald
