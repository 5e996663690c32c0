// herald: parse configuration, build the backplane and the node on one libuv loop, run until drained.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "backplane/in_memory_backplane.h"
#include "backplane/redis_backplane.h"
#include "backplane/redis_url.h"
#include "broker/config.h"
#include "broker/log.h"
#include "broker/metered_backplane.h"
#include "broker/metrics.h"
#include "broker/security.h"
#include "broker/server.h"

#ifndef HERALD_COMMIT
#define HERALD_COMMIT "unknown"
#endif

extern char** environ;

namespace {

uint64_t unix_time_us() {
    using namespace std::chrono;
    return static_cast<uint64_t>(duration_cast<microseconds>(system_clock::now().time_since_epoch()).count());
}

}  // namespace

int main(int argc, char** argv) {
    auto request = herald::parse_config(argc, argv, environ);
    if (!request.ok()) {
        std::fprintf(stderr, "herald: %s\n", request.error().c_str());
        return 2;
    }
    if (request->action == herald::ConfigRequest::Action::Help) {
        std::fputs(herald::config_help_text().c_str(), stdout);
        return 0;
    }
    if (request->action == herald::ConfigRequest::Action::Version) {
        std::printf("herald %s (commit %s)\n", HERALD_VERSION, HERALD_COMMIT);
        return 0;
    }
    const herald::Config& config = request->config;
    if (auto checked = herald::validate_security(config); !checked.ok()) {
        std::fprintf(stderr, "herald: %s\n", checked.error().c_str());
        return 2;
    }
    herald::Logger log(config.log_level);
    signal(SIGPIPE, SIG_IGN);  // a peer that vanished must surface as a write error, not kill the node

    uv_loop_t loop;
    uv_loop_init(&loop);
    std::unique_ptr<herald::Backplane> backplane;
    if (config.redis_url.empty()) {
        backplane = std::make_unique<herald::InMemoryBackplane>(&loop, std::make_shared<herald::InMemoryStore>());
    } else {
        auto options = herald::parse_redis_url(config.redis_url);  // validated with the configuration
        log.info("redis", {{"url", herald::redacted_redis_url(*options)}});
        backplane = std::make_unique<herald::RedisBackplane>(
            &loop, *options, [&log](std::string_view event, std::string_view detail) {
                log.info(event, {{"detail", detail}});
            });
    }
    int exit_code = 0;
    {
        herald::Metrics metrics(herald::BuildInfo{HERALD_VERSION, HERALD_COMMIT});
        // The hub and the server see the measured backplane only; it is gone before the real one is destroyed.
        herald::MeteredBackplane metered(*backplane, metrics, herald::MeterClocks{&uv_hrtime, &unix_time_us});
        herald::Server server(&loop, config, log, metered, metrics);
        if (auto error = server.start()) {
            log.error("start_failed", {{"error", *error}});
            exit_code = 1;
        }
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    backplane.reset();
    uv_loop_close(&loop);
    return exit_code;
}
