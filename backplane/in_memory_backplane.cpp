// One node's handle on an InMemoryStore; see in_memory_backplane.h. Store calls run at once on the caller's (the
// loop's) thread; their results, and the deliveries other nodes' publishes queue here, go through the inbox and run
// on this loop in the order they were queued.
#include "backplane/in_memory_backplane.h"

#include <exception>
#include <memory>
#include <optional>
#include <utility>

namespace herald {

InMemoryBackplane::InMemoryBackplane(uv_loop_t* loop, std::shared_ptr<InMemoryStore> store)
    : loop_(loop), store_(std::move(store)), async_(new uv_async_t{}) {
    uv_async_init(loop_, async_, &InMemoryBackplane::on_async);
    async_->data = this;
    store_->attach(this);
}

InMemoryBackplane::~InMemoryBackplane() {
    if (drain_stop_) *drain_stop_ = true;
    drain_stop_ = nullptr;
    if (async_ == nullptr) return;  // closed: the store no longer knows this node and the handle is uv's
    // Never closed: stop deliveries and neuter the handle; it stays open (see the header).
    store_->detach(this);
    std::deque<std::function<void()>> dropped;
    {
        std::lock_guard lock(inbox_mutex_);
        closing_ = true;
        dropped.swap(inbox_);
    }
    async_->data = nullptr;
}

template <typename T, typename Operation>
void InMemoryBackplane::run_and_post(Operation operation, BackplaneCallback<T> done) {
    if (closing_) return;
    std::optional<Result<T, BackplaneError>> result;
    try {
        result.emplace(operation());
    } catch (const std::exception& e) {
        result.emplace(fail(BackplaneError{BackplaneErrorKind::Internal, e.what()}));
    }
    if (!done) return;
    post([done = std::move(done), result = std::move(*result)]() mutable { done(std::move(result)); });
}

void InMemoryBackplane::publish(PublishRequest request, BackplaneCallback<PublishOutcome> done) {
    run_and_post<PublishOutcome>([&] { return store_->publish(request); }, std::move(done));
}

void InMemoryBackplane::history(HistoryRequest request, BackplaneCallback<HistorySlice> done) {
    run_and_post<HistorySlice>([&] { return store_->history(request); }, std::move(done));
}

void InMemoryBackplane::subscribe(const std::string& channel, BackplaneCallback<Unit> ready) {
    if (closing_) return;
    {
        std::lock_guard lock(inbox_mutex_);
        // A repeated subscribe keeps the generation, so deliveries already queued for it stay valid.
        subscriptions_.try_emplace(channel, ++next_generation_);
    }
    // `ready` is queued under the store lock at registration, so it precedes every delivery published after it.
    store_->subscribe(this, channel, [this, &ready] {
        if (ready) post([ready = std::move(ready)] { ready(Unit{}); });
    });
}

void InMemoryBackplane::unsubscribe(const std::string& channel) {
    if (closing_) return;
    store_->unsubscribe(this, channel);
    std::lock_guard lock(inbox_mutex_);
    subscriptions_.erase(channel);
}

void InMemoryBackplane::save_session(const std::string& session_id, SessionRecord record, uint64_t ttl_ms,
                                     BackplaneCallback<Unit> done) {
    run_and_post<Unit>(
        [&] {
            store_->save_session(session_id, std::move(record), ttl_ms);
            return Unit{};
        },
        std::move(done));
}

void InMemoryBackplane::load_session(const std::string& session_id,
                                     BackplaneCallback<std::optional<SessionRecord>> done) {
    run_and_post<std::optional<SessionRecord>>([&] { return store_->load_session(session_id); }, std::move(done));
}

void InMemoryBackplane::close(std::function<void()> done) {
    if (closing_ || async_ == nullptr) return;
    std::deque<std::function<void()>> dropped;
    {
        std::lock_guard lock(inbox_mutex_);
        closing_ = true;
        dropped.swap(inbox_);
    }
    if (drain_stop_) *drain_stop_ = true;
    drain_stop_ = nullptr;
    store_->detach(this);  // after this no other thread calls enqueue_delivery
    uv_async_t* handle = std::exchange(async_, nullptr);
    handle->data = new std::function<void()>(std::move(done));
    uv_close(reinterpret_cast<uv_handle_t*>(handle), &InMemoryBackplane::on_closed);
    // `dropped` is destroyed here, outside the inbox lock: a captured object's destructor may call post().
}

void InMemoryBackplane::enqueue_delivery(Delivery delivery) {
    std::lock_guard lock(inbox_mutex_);
    if (closing_) return;
    auto it = subscriptions_.find(delivery.channel);
    if (it == subscriptions_.end()) return;
    const uint64_t generation = it->second;
    push_locked([this, generation, delivery = std::move(delivery)] {
        // Read on the loop thread, the only writer, so no lock is needed.
        auto current = subscriptions_.find(delivery.channel);
        if (current == subscriptions_.end() || current->second != generation) return;  // unsubscribed since
        if (listener_) listener_->on_delivery(delivery);
    });
}

void InMemoryBackplane::post(std::function<void()> task) {
    std::lock_guard lock(inbox_mutex_);
    if (closing_) return;
    push_locked(std::move(task));
}

void InMemoryBackplane::push_locked(std::function<void()> task) {
    const bool was_empty = inbox_.empty();
    inbox_.push_back(std::move(task));
    // A non-empty inbox already has a wake-up pending: drain() empties it whole under this lock. The send happens
    // under the lock so close(), which sets closing_ under it, never races a send on the handle it closes.
    if (was_empty) uv_async_send(async_);
}

void InMemoryBackplane::on_async(uv_async_t* handle) {
    if (auto* self = static_cast<InMemoryBackplane*>(handle->data)) self->drain();
}

void InMemoryBackplane::on_closed(uv_handle_t* handle) {
    std::unique_ptr<std::function<void()>> done(static_cast<std::function<void()>*>(handle->data));
    delete reinterpret_cast<uv_async_t*>(handle);
    if (done && *done) (*done)();
}

void InMemoryBackplane::drain() {
    std::deque<std::function<void()>> batch;
    {
        std::lock_guard lock(inbox_mutex_);
        batch.swap(inbox_);
    }
    if (closing_) return;
    // A task may close or even destroy this node; after that only the local `stop` is touched.
    bool stop = false;
    drain_stop_ = &stop;
    for (auto& task : batch) {
        task();
        if (stop) break;
    }
    if (!stop) drain_stop_ = nullptr;
}

}  // namespace herald
