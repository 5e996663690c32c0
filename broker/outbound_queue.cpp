// Byte accounting and batching for a connection's outbound frames.
#include "broker/outbound_queue.h"

namespace herald {

void OutboundQueue::push(OutboundItem item) {
    pending_bytes_ += item.frame->size();
    pending_.push_back(std::move(item));
}

std::vector<uv_buf_t>& OutboundQueue::begin_write() {
    in_flight_.swap(pending_);
    in_flight_bytes_ = pending_bytes_;
    pending_bytes_ = 0;
    bufs_.clear();
    bufs_.reserve(in_flight_.size());
    for (const auto& item : in_flight_)
        bufs_.push_back(uv_buf_init(const_cast<char*>(item.frame->data()), static_cast<unsigned>(item.frame->size())));
    return bufs_;
}

void OutboundQueue::advance(size_t bytes) {
    size_t done = 0;
    while (done < bufs_.size() && bytes >= bufs_[done].len) bytes -= bufs_[done++].len;
    bufs_.erase(bufs_.begin(), bufs_.begin() + static_cast<std::ptrdiff_t>(done));
    if (bytes > 0 && !bufs_.empty()) {
        bufs_.front().base += bytes;
        bufs_.front().len -= bytes;
    }
}

WriteCompletion OutboundQueue::complete_write() {
    WriteCompletion done{in_flight_bytes_, 0};
    for (const auto& item : in_flight_) {
        if (item.observer) item.observer->on_written(item.serial);
        if (item.published_at_us && (!done.oldest_published_at_us || item.published_at_us < done.oldest_published_at_us))
            done.oldest_published_at_us = item.published_at_us;
    }
    in_flight_.clear();
    in_flight_bytes_ = 0;
    return done;
}

void OutboundQueue::drop_pending() {
    pending_.clear();
    pending_bytes_ = 0;
}

void OutboundQueue::forget(const WriteObserver* observer) {
    for (auto* list : {&pending_, &in_flight_})
        for (auto& item : *list)
            if (item.observer == observer) item.observer = nullptr;
}

void OutboundQueue::shrink_idle() {
    if (pending_.empty() && in_flight_.empty()) {
        std::vector<OutboundItem>().swap(pending_);
        std::vector<OutboundItem>().swap(in_flight_);
        std::vector<uv_buf_t>().swap(bufs_);
    }
}

}  // namespace herald
