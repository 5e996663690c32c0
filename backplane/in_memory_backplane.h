// One node's handle on an InMemoryStore: runs callbacks and deliveries on that node's libuv loop through an inbox
// woken by uv_async, so the store can be shared by loops on other threads.
//
// Threads: every Backplane method, and the destructor, is called on the node's loop thread. Only post() and
// enqueue_delivery() may be called from other threads (the store calls enqueue_delivery under its lock while
// another node publishes). Lock order is store → inbox; the inbox lock is never held while calling the store or a
// callback.
//
// Lifetime: call close() and let the loop run its close callback before the loop is closed. The destructor is safe
// after close(); without close() it detaches from the store but cannot close the uv_async handle (the loop may be
// gone), so the handle leaks and keeps the loop alive — that is a bug of the owner.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <uv.h>

#include "backplane/backplane.h"
#include "backplane/in_memory_store.h"

namespace herald {

class InMemoryBackplane final : public Backplane {
public:
    InMemoryBackplane(uv_loop_t* loop, std::shared_ptr<InMemoryStore> store);
    ~InMemoryBackplane() override;

    InMemoryBackplane(const InMemoryBackplane&) = delete;
    InMemoryBackplane& operator=(const InMemoryBackplane&) = delete;

    void set_listener(BackplaneListener* listener) override { listener_ = listener; }
    bool available() const override { return true; }
    std::string kind() const override { return "memory"; }

    void publish(PublishRequest request, BackplaneCallback<PublishOutcome> done) override;
    void history(HistoryRequest request, BackplaneCallback<HistorySlice> done) override;
    void subscribe(const std::string& channel, BackplaneCallback<Unit> ready) override;
    // Also drops deliveries of `channel` already queued for this node: none reaches the listener after this call.
    void unsubscribe(const std::string& channel) override;
    void save_session(const std::string& session_id, SessionRecord record, uint64_t ttl_ms,
                      BackplaneCallback<Unit> done) override;
    void load_session(const std::string& session_id,
                      BackplaneCallback<std::optional<SessionRecord>> done) override;
    // A second close() is ignored (its `done` never runs).
    void close(std::function<void()> done) override;

    // Called by the store, under its lock, from any thread: queue a delivery for this node's loop.
    void enqueue_delivery(Delivery delivery);
    // Queue any task to run on this node's loop (used for callbacks). Dropped once close() has started.
    void post(std::function<void()> task);

private:
    static void on_async(uv_async_t* handle);
    static void on_closed(uv_handle_t* handle);
    void drain();
    void push_locked(std::function<void()> task);  // inbox_mutex_ held
    // Runs `operation` against the store now and posts its result (or an Internal error) to `done`.
    template <typename T, typename Operation>
    void run_and_post(Operation operation, BackplaneCallback<T> done);

    uv_loop_t* loop_;
    std::shared_ptr<InMemoryStore> store_;
    BackplaneListener* listener_ = nullptr;
    uv_async_t* async_ = nullptr;  // owned; freed in its close callback; nullptr once handed to uv_close
    std::mutex inbox_mutex_;
    std::deque<std::function<void()>> inbox_;  // guarded by inbox_mutex_
    bool closing_ = false;                      // written on the loop thread under inbox_mutex_
    // channel → generation of its current subscription; a queued delivery carries the generation it was queued
    // under and is dropped if that subscription has ended. Written on the loop thread under inbox_mutex_.
    std::unordered_map<std::string, uint64_t> subscriptions_;
    uint64_t next_generation_ = 0;
    // While drain() runs: points at its local stop flag, which close() and the destructor set, so drain() stops
    // running tasks and never touches a closed or destroyed node again.
    bool* drain_stop_ = nullptr;
};

}  // namespace herald
