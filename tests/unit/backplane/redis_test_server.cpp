// A redis-server per test process; see redis_test_server.h.
#include "tests/unit/backplane/redis_test_server.h"

#include <chrono>
#include <cstdlib>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

namespace herald::testing {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(5);
constexpr auto kStopTimeout = std::chrono::seconds(2);

std::string server_binary() {
    const char* configured = std::getenv("HERALD_REDIS_SERVER");
    return configured != nullptr && *configured != '\0' ? configured : "/usr/bin/redis-server";
}

// A port nobody listens on right now (the kernel's choice for an ephemeral bind). Another process could take it
// before redis-server does; start() then tries another.
uint16_t free_loopback_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof address;
    uint16_t port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
        port = ntohs(address.sin_port);
    }
    ::close(fd);
    return port;
}

std::string reply_text(const redisReply* reply) {
    switch (reply->type) {
        case REDIS_REPLY_STATUS:
        case REDIS_REPLY_STRING:
            return std::string(reply->str, reply->len);
        case REDIS_REPLY_ERROR:
            return "ERR: " + std::string(reply->str, reply->len);
        case REDIS_REPLY_INTEGER:
            return std::to_string(reply->integer);
        case REDIS_REPLY_NIL:
            return "(nil)";
        case REDIS_REPLY_ARRAY: {
            std::string out;
            for (size_t i = 0; i < reply->elements; ++i) {
                if (i > 0) out += "\n";
                out += reply_text(reply->element[i]);
            }
            return out;
        }
        default:
            return "?";
    }
}

std::unique_ptr<RedisTestServer>& shared_slot() {
    static std::unique_ptr<RedisTestServer> server;
    return server;
}

// Stops the shared server when the test run ends, before static destruction.
class SharedServerEnvironment final : public ::testing::Environment {
public:
    void TearDown() override { shared_slot().reset(); }
};
[[maybe_unused]] ::testing::Environment* const kSharedServerEnvironment =
    ::testing::AddGlobalTestEnvironment(new SharedServerEnvironment);

}  // namespace

std::unique_ptr<RedisTestServer> RedisTestServer::start(std::string* error) {
    std::string last_error = "no free port";
    for (int attempt = 0; attempt < 5; ++attempt) {
        const uint16_t port = free_loopback_port();
        if (port == 0) continue;
        std::unique_ptr<RedisTestServer> server(new RedisTestServer(port));
        if (server->launch(&last_error)) return server;
    }
    if (error) *error = last_error;
    return nullptr;
}

RedisTestServer* RedisTestServer::shared(std::string* error) {
    auto& slot = shared_slot();
    if (!slot) slot = start(error);
    return slot.get();
}

RedisTestServer::~RedisTestServer() { stop(); }

bool RedisTestServer::launch(std::string* error) {
    const std::string binary = server_binary();
    if (::access(binary.c_str(), X_OK) != 0) {
        if (error) *error = binary + " is not an executable (set HERALD_REDIS_SERVER)";
        return false;
    }
    const std::string port = std::to_string(port_);
    // Everything the child needs is built before fork: after it, only async-signal-safe calls.
    std::vector<std::string> args{binary,         "--port",       port,     "--bind",       "127.0.0.1",
                                  "--save",       "",             "--appendonly", "no", "--daemonize", "no",
                                  "--dir",        "/tmp",         "--logfile", ""};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);

    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        if (error) *error = "fork failed";
        return false;
    }
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // the server dies with the test process, whatever kills it
        if (::getppid() != parent) ::_exit(127);
        const int null_fd = ::open("/dev/null", O_RDWR);
        if (null_fd >= 0) {
            ::dup2(null_fd, STDIN_FILENO);
            ::dup2(null_fd, STDOUT_FILENO);
            ::dup2(null_fd, STDERR_FILENO);
        }
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    pid_ = pid;

    const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            if (error) *error = "redis-server exited at start (port " + port + " taken?)";
            return false;
        }
        if (command({"PING"}) == std::optional<std::string>("PONG")) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (error) *error = "redis-server did not answer PING on port " + port;
    kill_hard();
    return false;
}

void RedisTestServer::stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);  // a paused server cannot act on SIGTERM
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + kStopTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
            pid_ = -1;
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    kill_hard();
}

void RedisTestServer::kill_hard() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

void RedisTestServer::pause() {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void RedisTestServer::resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
}

bool RedisTestServer::restart(std::string* error) {
    kill_hard();
    return launch(error);
}

std::optional<std::string> RedisTestServer::command(const std::vector<std::string>& argv) const {
    const timeval timeout{1, 0};
    redisContext* context = redisConnectWithTimeout("127.0.0.1", port_, timeout);
    if (context == nullptr) return std::nullopt;
    if (context->err != 0) {
        redisFree(context);
        return std::nullopt;
    }
    redisSetTimeout(context, timeout);
    std::vector<const char*> args;
    std::vector<size_t> lengths;
    for (const auto& arg : argv) {
        args.push_back(arg.data());
        lengths.push_back(arg.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(context, static_cast<int>(args.size()), args.data(), lengths.data()));
    std::optional<std::string> text;
    if (reply != nullptr) {
        text = reply_text(reply);
        freeReplyObject(reply);
    }
    redisFree(context);
    return text;
}

}  // namespace herald::testing
