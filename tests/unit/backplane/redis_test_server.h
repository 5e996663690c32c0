// A real redis-server for the Redis backplane tests: started on a free loopback port with no persistence, waited for
// with PING, stopped on every exit path — by its destructor, by a gtest environment at the end of the run, and by
// the kernel (PR_SET_PDEATHSIG) if the test process dies first.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace herald::testing {

class RedisTestServer {
public:
    // A new server on a free port; nullptr (with the reason in `error`) if none would start within a few seconds.
    static std::unique_ptr<RedisTestServer> start(std::string* error = nullptr);
    // The server this test process shares between cases (each harness FLUSHALLs it); started on first use.
    static RedisTestServer* shared(std::string* error = nullptr);

    ~RedisTestServer();
    RedisTestServer(const RedisTestServer&) = delete;
    RedisTestServer& operator=(const RedisTestServer&) = delete;

    uint16_t port() const { return port_; }
    bool running() const { return pid_ > 0; }

    // SIGKILL and reap: the server vanishes at once, as in a crash (its sockets are closed by the kernel).
    void kill_hard();
    // SIGSTOP / SIGCONT: the server stops answering while its sockets stay open, as a hung server would.
    void pause();
    void resume();
    // Starts the server again on the same port (after kill_hard); false if it does not answer PING in time.
    bool restart(std::string* error = nullptr);

    // One blocking command on a fresh connection, from the test thread while no loop runs. The reply as text:
    // status and strings as they are, integers in decimal, nil as "(nil)", errors as "ERR: <message>", arrays as
    // their elements joined by '\n'. Nothing if the server cannot be reached.
    std::optional<std::string> command(const std::vector<std::string>& argv) const;

private:
    explicit RedisTestServer(uint16_t port) : port_(port) {}
    bool launch(std::string* error);
    void stop();

    uint16_t port_;
    pid_t pid_ = -1;
};

}  // namespace herald::testing
