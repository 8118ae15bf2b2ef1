// ReplayPipeline: read and apply on the caller's thread, decode on decoder threads
// (replay_pipeline.hpp).
//
// The batches form a ring. Batch n (ring entry n % size) goes through: filled by the reader
// (n == filled_), claimed and decoded by any thread (n < claimed_; `ready` once done), applied
// by the reader (n == applied_n_), then cleared and free for batch n + size. The reader applies
// what is decoded each time it hands over a batch, and decodes itself when it would otherwise
// wait, so the pipeline uses whatever cores there are without idling on a machine with few.
#include "prevalent/replay_pipeline.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace prevalent::detail {

record_view ReplayPipeline::batch::view(std::size_t i) const {
  const record_slot& r = records[i];
  return record_view{r.seq,   r.timestamp_ns, byte_view(payloads.data() + r.at, r.size),
                     r.codec, *r.file,        r.offset,
                     r.epoch};
}

ReplayPipeline::ReplayPipeline(replay_hooks hooks, std::function<void(const record_view&)> applied,
                               replay_pipeline_options options)
    : hooks_(std::move(hooks)), applied_(std::move(applied)), options_(options) {
  options_.batch_records = std::max<std::size_t>(options_.batch_records, 1);
  if (options_.decoders == 0)
    options_.decoders = std::max(1u, std::thread::hardware_concurrency()) - 1;
  options_.decoders = std::max(options_.decoders, 1u);
  if (options_.batches == 0)
    options_.batches = std::max<std::size_t>(16, 4 * (options_.decoders + 2));
  options_.batches = std::max<std::size_t>(options_.batches, 2);
}

ReplayPipeline::~ReplayPipeline() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (auto& t : threads_) t.join();
}

void ReplayPipeline::start() {
  ring_.resize(options_.batches);
  for (auto& b : ring_) {
    b.slots = hooks_.make_slots();
    b.slots->reserve(options_.batch_records);
    b.records.reserve(options_.batch_records);
  }
  threads_.reserve(options_.decoders);
  for (unsigned i = 0; i < options_.decoders; ++i)
    threads_.emplace_back([this] { decoder_loop(); });
}

void ReplayPipeline::push(const record_view& r) {
  if (threads_.empty()) {
    if (pushed_ < options_.inline_records) {
      ++pushed_;
      hooks_.one(r);
      if (applied_) applied_(r);
      return;
    }
    start();
  }
  ++pushed_;
  if (!filling_) {
    // A new batch needs a free ring entry: apply and decode until there is one.
    std::unique_lock lock(mutex_);
    while (filled_ - applied_n_ >= ring_.size()) step(lock);
    filling_ = true;
  }
  batch& b = at(filled_);
  if (files_.empty() || files_.back() != r.file) files_.push_back(r.file);
  b.records.push_back({r.seq, r.timestamp_ns, r.offset, b.payloads.size(), r.payload.size(),
                       r.codec, &files_.back(), r.epoch});
  b.payloads.insert(b.payloads.end(), r.payload.begin(), r.payload.end());
  if (b.records.size() >= options_.batch_records || b.payloads.size() >= options_.batch_bytes) {
    publish();
    std::unique_lock lock(mutex_);
    while (!error_ && applied_n_ < filled_ && at(applied_n_).ready) apply_head(lock);
    if (error_) std::rethrow_exception(error_);
  }
}

void ReplayPipeline::publish() {
  filling_ = false;
  {
    std::lock_guard lock(mutex_);
    ++filled_;
  }
  changed_.notify_all();
}

void ReplayPipeline::settle() {
  if (threads_.empty()) return;  // every record was applied as it was pushed
  if (filling_) publish();
  std::unique_lock lock(mutex_);
  while (applied_n_ != filled_) step(lock);
  if (error_) std::rethrow_exception(error_);
}

void ReplayPipeline::settled_rethrow() {
  settle();
  throw;
}

void ReplayPipeline::step(std::unique_lock<std::mutex>& lock) {
  if (error_) std::rethrow_exception(error_);
  if (applied_n_ < filled_ && at(applied_n_).ready)
    apply_head(lock);
  else if (!claim_and_decode(lock))
    changed_.wait(lock);
}

void ReplayPipeline::apply_head(std::unique_lock<std::mutex>& lock) {
  batch& b = at(applied_n_);
  lock.unlock();
  std::exception_ptr failed;
  try {
    for (std::size_t i = 0; i < b.decoded; ++i) {
      const record_view r = b.view(i);
      b.slots->apply(i, r);
      if (applied_) applied_(r);
    }
  } catch (...) {
    failed = std::current_exception();
  }
  // A record that did not decode stops the replay after the ones before it were applied.
  if (!failed) failed = b.failure;
  if (failed) b.slots->clear();
  b.records.clear();
  b.payloads.clear();
  b.decoded = 0;
  b.failure = nullptr;
  lock.lock();
  b.ready = false;
  ++applied_n_;
  if (failed) {
    error_ = failed;  // the decoders stop claiming
    std::rethrow_exception(failed);
  }
}

void ReplayPipeline::decode(batch& b) {
  b.slots->reserve(b.records.size());
  std::size_t i = 0;
  try {
    for (; i < b.records.size(); ++i) b.slots->decode(i, b.view(i));
  } catch (...) {
    b.failure = std::current_exception();
  }
  b.decoded = i;
}

bool ReplayPipeline::claim_and_decode(std::unique_lock<std::mutex>& lock) {
  if (stopping_ || error_ || claimed_ >= filled_) return false;
  batch& b = at(claimed_++);
  lock.unlock();
  decode(b);
  lock.lock();
  b.ready = true;
  changed_.notify_all();
  return true;
}

void ReplayPipeline::decoder_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_)
    if (!claim_and_decode(lock)) changed_.wait(lock);
}

}  // namespace prevalent::detail
