// One node's handle on an InMemoryStore: runs callbacks and deliveries on that node's libuv loop through an inbox
// woken by uv_async, so the store can be shared by loops on other threads.
#pragma once
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <uv.h>

#include "backplane/backplane.h"
#include "backplane/in_memory_store.h"

namespace herald {

class InMemoryBackplane final : public Backplane {
public:
    InMemoryBackplane(uv_loop_t* loop, std::shared_ptr<InMemoryStore> store);
    ~InMemoryBackplane() override;

    void set_listener(BackplaneListener* listener) override { listener_ = listener; }
    bool available() const override { return true; }
    std::string kind() const override { return "memory"; }

    void publish(PublishRequest request, BackplaneCallback<PublishOutcome> done) override;
    void history(HistoryRequest request, BackplaneCallback<HistorySlice> done) override;
    void subscribe(const std::string& channel, BackplaneCallback<Unit> ready) override;
    void unsubscribe(const std::string& channel) override;
    void save_session(const std::string& session_id, SessionRecord record, uint64_t ttl_ms,
                      BackplaneCallback<Unit> done) override;
    void load_session(const std::string& session_id,
                      BackplaneCallback<std::optional<SessionRecord>> done) override;
    void close(std::function<void()> done) override;

    // Called by the store, under its lock, from any thread: queue a delivery for this node's loop.
    void enqueue_delivery(Delivery delivery);
    // Queue any task to run on this node's loop (used for callbacks).
    void post(std::function<void()> task);

private:
    static void on_async(uv_async_t* handle);
    void drain();

    uv_loop_t* loop_;
    std::shared_ptr<InMemoryStore> store_;
    BackplaneListener* listener_ = nullptr;
    uv_async_t* async_ = nullptr;  // owned; freed in its close callback
    std::mutex inbox_mutex_;
    std::deque<std::function<void()>> inbox_;
    bool closing_ = false;
};

}  // namespace herald
