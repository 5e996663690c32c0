// Routing of the embedded web assets: the SDK always, the demo unless --no-demo, revalidation and safe paths.
#include "broker/static_assets.h"

#include <gtest/gtest.h>

#include <string>

namespace herald {
namespace {

HttpRequest get(std::string path, std::string if_none_match = "") {
    HttpRequest request;
    request.method = "GET";
    request.target = path;
    request.path = std::move(path);
    if (!if_none_match.empty()) request.headers.push_back({"If-None-Match", std::move(if_none_match)});
    return request;
}

std::string header(const HttpResponse& response, std::string_view name) {
    for (const auto& [key, value] : response.headers)
        if (key == name) return value;
    return "";
}

TEST(StaticAssets, ServesTheSdkAsJavaScriptToAnyOrigin) {
    auto response = static_asset(get("/sdk/herald-client.js"), {});
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->content_type, "text/javascript; charset=utf-8");
    EXPECT_NE(response->body.find("export"), std::string::npos) << "the SDK is an ES module";
    EXPECT_EQ(header(*response, "Access-Control-Allow-Origin"), "*");
    EXPECT_FALSE(header(*response, "ETag").empty());

    auto types = static_asset(get("/sdk/herald-client.d.ts"), {});
    ASSERT_TRUE(types);
    EXPECT_EQ(types->status, 200);
    EXPECT_EQ(static_asset(get("/sdk/other.js"), {})->status, 404);
}

TEST(StaticAssets, AnswersNotModifiedForTheCurrentETag) {
    auto first = static_asset(get("/sdk/herald-client.js"), {});
    ASSERT_TRUE(first);
    std::string etag = header(*first, "ETag");
    auto again = static_asset(get("/sdk/herald-client.js", etag), {});
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 304);
    EXPECT_TRUE(again->body.empty());
    auto stale = static_asset(get("/sdk/herald-client.js", "\"0000000000000000\""), {});
    EXPECT_EQ(stale->status, 200);
}

TEST(StaticAssets, ServesTheDemoPageWithAStrictContentSecurityPolicy) {
    auto page = static_asset(get("/demo/"), {});
    ASSERT_TRUE(page);
    EXPECT_EQ(page->status, 200);
    EXPECT_EQ(page->content_type, "text/html; charset=utf-8");
    EXPECT_NE(page->body.find("/sdk/herald-client.js"), std::string::npos) << "the page loads the served SDK";
    EXPECT_NE(header(*page, "Content-Security-Policy").find("script-src 'self'"), std::string::npos);
    EXPECT_EQ(header(*page, "Access-Control-Allow-Origin"), "");

    EXPECT_EQ(static_asset(get("/demo"), {})->status, 301);
    EXPECT_EQ(header(*static_asset(get("/"), {}), "Location"), "/demo/");
    EXPECT_EQ(static_asset(get("/demo/missing.js"), {})->status, 404);
    EXPECT_EQ(static_asset(get("/demo/../sdk/js/index.d.ts"), {})->status, 404);
    EXPECT_FALSE(static_asset(get("/elsewhere"), {})) << "other paths are not asset routes";
}

TEST(StaticAssets, NoDemoLeavesOnlyTheSdk) {
    StaticAssetOptions no_demo{.demo = false};
    EXPECT_FALSE(static_asset(get("/demo/"), no_demo));
    EXPECT_FALSE(static_asset(get("/"), no_demo));
    auto sdk = static_asset(get("/sdk/herald-client.js"), no_demo);
    ASSERT_TRUE(sdk);
    EXPECT_EQ(sdk->status, 200);
}

}  // namespace
}  // namespace herald
