// OutboundQueue on its own: byte accounting, batching into one vectored write, observers, forget and drops.
#include "broker/outbound_queue.h"

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace herald {
namespace {

struct RecordingObserver final : WriteObserver {
    std::vector<uint64_t> written;
    void on_written(uint64_t serial) override { written.push_back(serial); }
};

Frame frame_of(size_t size, char fill = 'x') { return make_frame(std::string(size, fill)); }

TEST(OutboundQueueTest, EmptyQueue) {
    OutboundQueue q;
    EXPECT_EQ(q.queued_bytes(), 0u);
    EXPECT_FALSE(q.has_pending());
    EXPECT_FALSE(q.writing());
}

TEST(OutboundQueueTest, CountsQueuedBytesAcrossPendingAndInFlight) {
    OutboundQueue q;
    q.push(OutboundItem{frame_of(10)});
    q.push(OutboundItem{frame_of(20)});
    EXPECT_EQ(q.queued_bytes(), 30u);
    EXPECT_TRUE(q.has_pending());
    EXPECT_FALSE(q.writing());

    q.begin_write();
    EXPECT_EQ(q.queued_bytes(), 30u) << "in-flight bytes still count against the limit";
    EXPECT_FALSE(q.has_pending());
    EXPECT_TRUE(q.writing());

    q.push(OutboundItem{frame_of(5)});
    EXPECT_EQ(q.queued_bytes(), 35u);
    EXPECT_TRUE(q.has_pending());

    WriteCompletion done = q.complete_write();
    EXPECT_EQ(done.bytes, 30u) << "only the in-flight batch completed";
    EXPECT_EQ(q.queued_bytes(), 5u);
    EXPECT_FALSE(q.writing());
    EXPECT_TRUE(q.has_pending());
}

TEST(OutboundQueueTest, BeginWriteDescribesEveryPendingFrameInOrderWithoutCopying) {
    OutboundQueue q;
    Frame a = frame_of(3, 'a');
    Frame b = frame_of(200, 'b');
    Frame c = frame_of(1, 'c');
    for (const Frame& f : {a, b, c}) q.push(OutboundItem{f});
    const std::vector<uv_buf_t>& bufs = q.begin_write();
    ASSERT_EQ(bufs.size(), 3u);
    EXPECT_EQ(bufs[0].base, a->data()) << "buffers point into the shared frame";
    EXPECT_EQ(bufs[0].len, 3u);
    EXPECT_EQ(bufs[1].base, b->data());
    EXPECT_EQ(bufs[1].len, 200u);
    EXPECT_EQ(bufs[2].base, c->data());
    EXPECT_EQ(bufs[2].len, 1u);
    EXPECT_EQ(a.use_count(), 2) << "the queue holds a reference while in flight";

    q.push(OutboundItem{frame_of(7)});
    q.complete_write();
    EXPECT_EQ(a.use_count(), 1) << "a completed batch releases its frames";
    const std::vector<uv_buf_t>& next = q.begin_write();
    ASSERT_EQ(next.size(), 1u) << "the next batch holds only what was queued since";
    EXPECT_EQ(next[0].len, 7u);
}

TEST(OutboundQueueTest, OneFrameSharedByManyQueues) {
    Frame shared = frame_of(50);
    OutboundQueue q1, q2, q3;
    for (OutboundQueue* q : {&q1, &q2, &q3}) q->push(OutboundItem{shared});
    EXPECT_EQ(shared.use_count(), 4);
    EXPECT_EQ(q1.begin_write()[0].base, q2.begin_write()[0].base);
    for (OutboundQueue* q : {&q1, &q2, &q3}) EXPECT_EQ(q->queued_bytes(), 50u);
}

TEST(OutboundQueueTest, CompleteWriteNotifiesObserversOfTheBatchOnly) {
    OutboundQueue q;
    RecordingObserver one, two;
    q.push(OutboundItem{frame_of(10), &one, 5, 1'000});
    q.push(OutboundItem{frame_of(10)});  // a reply: no observer
    q.push(OutboundItem{frame_of(10), &two, 9, 800});
    q.push(OutboundItem{frame_of(10), &one, 6, 1'200});
    q.begin_write();
    q.push(OutboundItem{frame_of(10), &one, 7, 500});  // next batch
    EXPECT_TRUE(one.written.empty()) << "nothing is written before complete_write";

    WriteCompletion done = q.complete_write();
    EXPECT_EQ(one.written, (std::vector<uint64_t>{5, 6}));
    EXPECT_EQ(two.written, (std::vector<uint64_t>{9}));
    EXPECT_EQ(done.bytes, 40u);
    EXPECT_EQ(done.oldest_published_at_us, 800u) << "the oldest publish time of the batch, ignoring zeros";

    q.begin_write();
    done = q.complete_write();
    EXPECT_EQ(one.written, (std::vector<uint64_t>{5, 6, 7}));
    EXPECT_EQ(done.oldest_published_at_us, 500u);
}

TEST(OutboundQueueTest, BatchWithoutMessagesReportsNoPublishTime) {
    OutboundQueue q;
    q.push(OutboundItem{frame_of(4)});
    q.begin_write();
    WriteCompletion done = q.complete_write();
    EXPECT_EQ(done.bytes, 4u);
    EXPECT_EQ(done.oldest_published_at_us, 0u);
}

TEST(OutboundQueueTest, CompleteWriteWithNothingInFlightIsEmpty) {
    OutboundQueue q;
    q.push(OutboundItem{frame_of(4)});
    WriteCompletion done = q.complete_write();
    EXPECT_EQ(done.bytes, 0u);
    EXPECT_EQ(q.queued_bytes(), 4u) << "pending items are untouched";
}

TEST(OutboundQueueTest, ForgetStopsNotificationsButKeepsTheBytes) {
    OutboundQueue q;
    RecordingObserver gone, stays;
    q.push(OutboundItem{frame_of(10), &gone, 1, 0});
    q.push(OutboundItem{frame_of(10), &stays, 1, 0});
    q.begin_write();
    q.push(OutboundItem{frame_of(10), &gone, 2, 0});
    q.push(OutboundItem{frame_of(10), &stays, 2, 0});
    q.forget(&gone);  // covers both the in-flight and the pending item
    EXPECT_EQ(q.queued_bytes(), 40u) << "forgotten items are still sent";
    q.complete_write();
    q.begin_write();
    WriteCompletion done = q.complete_write();
    EXPECT_TRUE(gone.written.empty());
    EXPECT_EQ(stays.written, (std::vector<uint64_t>{1, 2}));
    EXPECT_EQ(done.bytes, 20u);
}

TEST(OutboundQueueTest, DropPendingKeepsTheInFlightBatch) {
    OutboundQueue q;
    RecordingObserver obs;
    q.push(OutboundItem{frame_of(10), &obs, 1, 0});
    q.begin_write();
    q.push(OutboundItem{frame_of(20), &obs, 2, 0});
    q.push(OutboundItem{frame_of(30), &obs, 3, 0});
    q.drop_pending();
    EXPECT_FALSE(q.has_pending());
    EXPECT_TRUE(q.writing()) << "bytes already handed to uv_write cannot be taken back";
    EXPECT_EQ(q.queued_bytes(), 10u);
    q.complete_write();
    EXPECT_EQ(obs.written, (std::vector<uint64_t>{1})) << "dropped items are never reported written";
    EXPECT_EQ(q.queued_bytes(), 0u);
}

TEST(OutboundQueueTest, ShrinkIdleKeepsQueuedItemsAndAnIdleQueueStaysUsable) {
    OutboundQueue q;
    RecordingObserver obs;
    q.push(OutboundItem{frame_of(10), &obs, 1, 0});
    q.shrink_idle();  // not idle: must not lose anything
    EXPECT_EQ(q.queued_bytes(), 10u);
    ASSERT_EQ(q.begin_write().size(), 1u);
    q.shrink_idle();  // in flight: the buffers handed to uv_write must stay valid
    EXPECT_TRUE(q.writing());
    q.complete_write();
    EXPECT_EQ(obs.written, (std::vector<uint64_t>{1}));

    q.shrink_idle();
    EXPECT_EQ(q.queued_bytes(), 0u);
    q.push(OutboundItem{frame_of(3), &obs, 2, 0});
    const auto& bufs = q.begin_write();
    ASSERT_EQ(bufs.size(), 1u);
    EXPECT_EQ(bufs[0].len, 3u);
    q.complete_write();
    EXPECT_EQ(obs.written, (std::vector<uint64_t>{1, 2}));
}

}  // namespace
}  // namespace herald
