// Replays journal records onto a state in three stages: the thread that reads and verifies
// the records (the journal's reader) pushes them into batches; decoder threads turn each
// batch's payloads into typed commands (replay_hooks.hpp); the reading thread applies the
// decoded batches strictly in sequence order, between batches it reads. Applying on the
// caller's thread keeps the state's memory where a one-by-one replay would have allocated it
// (an apply thread of its own put the state in another malloc arena, grown by mprotect calls).
// A replay that stays short (under `inline_records` records) never starts a thread: each
// record is decoded and applied as it is pushed.
//
// Errors come out as if the records had been replayed one by one: the first record that fails
// to decode or apply stops the replay, every record before it has been applied and none after
// it; push() or settle() throws that record's exception. A reader that throws (a corrupt
// record further on) calls settle() first, so that an earlier record's error wins, as it would
// have sequentially (settled_rethrow() does both).
//
// Threads: push() and settle() from one thread (the reader), which is also where records are
// applied. Batches and their buffers are
// reused: no allocation per record once the buffers have grown.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "prevalent/detail/replay_hooks.hpp"
#include "prevalent/journal_info.hpp"

namespace prevalent::detail {

struct replay_pipeline_options {
  std::size_t inline_records = 1024;  // replayed one by one before any thread starts
  std::size_t batch_records = 256;    // a batch ends after this many records...
  std::size_t batch_bytes = 1 << 20;  // ...or this many payload bytes
  unsigned decoders = 0;              // decoder threads; 0: hardware threads - 1, at least 1
  std::size_t batches = 0;            // batches in flight; 0: 4 per thread, at least 16
};

class ReplayPipeline {
 public:
  // `applied` is called after each record has been applied (on the caller's thread).
  ReplayPipeline(replay_hooks hooks, std::function<void(const record_view&)> applied,
                 replay_pipeline_options options = {});
  // Stops the threads; records pushed and not yet applied are dropped (the replay failed).
  ~ReplayPipeline();
  ReplayPipeline(const ReplayPipeline&) = delete;
  ReplayPipeline& operator=(const ReplayPipeline&) = delete;

  // Hands over one verified record (copied: `r` need not outlive the call). Throws the error
  // of an earlier record if the replay has stopped at it.
  void push(const record_view& r);
  // Returns once every record pushed has been applied; throws the error that stopped the
  // replay, if any (again on every later call).
  void settle();
  // For a reader's catch block: settles, so that an earlier record's error is thrown instead
  // of the current exception, else rethrows the current exception.
  [[noreturn]] void settled_rethrow();
  // Whether decoder threads were started (the replay went past inline_records).
  bool threaded() const { return !threads_.empty(); }

 private:
  struct record_slot {
    std::uint64_t seq;
    std::int64_t timestamp_ns;
    std::uint64_t offset;
    std::size_t at, size;  // of the payload in batch::payloads
    prevalent::codec codec;
    const std::string* file;
    std::uint64_t epoch = 0;
  };
  struct batch {
    std::vector<record_slot> records;
    std::vector<std::uint8_t> payloads;
    std::unique_ptr<command_slots> slots;
    std::size_t decoded = 0;     // records [0, decoded) decoded
    std::exception_ptr failure;  // why record `decoded` did not decode
    bool ready = false;          // decoding done (guarded by mutex_)
    record_view view(std::size_t i) const;
  };

  void start();
  void publish();  // hands the batch being filled to the decoders (reader thread)
  void decode(batch& b);
  void decoder_loop();
  // Under mutex_: applies the oldest batch if it is decoded, else decodes one, else waits.
  // Throws the error that stopped the replay.
  void step(std::unique_lock<std::mutex>& lock);
  // Under mutex_ (released meanwhile): applies batch applied_n_, which is decoded; throws the
  // error of the record that stops the replay there, if any.
  void apply_head(std::unique_lock<std::mutex>& lock);
  // Under mutex_: claims the next batch to decode, if any; false if none is waiting.
  bool claim_and_decode(std::unique_lock<std::mutex>& lock);
  batch& at(std::uint64_t n) { return ring_[n % ring_.size()]; }

  replay_hooks hooks_;
  std::function<void(const record_view&)> applied_;
  replay_pipeline_options options_;
  std::uint64_t pushed_ = 0;
  bool filling_ = false;           // the reader has started batch filled_ (its ring entry is free)
  std::deque<std::string> files_;  // the segment names records refer to (reader thread)

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<batch> ring_;
  std::uint64_t filled_ = 0;     // batches handed to the decoders
  std::uint64_t claimed_ = 0;    // batches a thread has started decoding
  std::uint64_t applied_n_ = 0;  // batches applied (their ring entries are free again)
  bool stopping_ = false;
  std::exception_ptr error_;  // the record that stopped the replay
  std::vector<std::thread> threads_;
};

}  // namespace prevalent::detail
