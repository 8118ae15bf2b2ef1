// The typed half of replaying a journal, as the compiled replay pipeline sees it: a way to
// decode and apply one record at once (short replays), and slots into which a batch of
// records is decoded on one thread and from which it is applied, in order, on another.
// Store<State, Commands...> implements it (command_envelope.hpp: decoded_slots); the pipeline
// (lib/replay_pipeline.cpp) owns the threads. Not an API of its own.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "prevalent/journal_info.hpp"

namespace prevalent::detail {

// Decoded commands of one batch of records. decode() and apply() of one object are never
// called at the same time; objects are not shared between batches.
class command_slots {
 public:
  virtual ~command_slots() = default;
  // Makes room for `n` commands (capacity is kept from batch to batch).
  virtual void reserve(std::size_t n) = 0;
  // Decodes record `r` into slot `i` (any thread). Throws what replaying `r` alone would
  // throw for a record that does not decode (errc::bad_command_payload, unknown_command, or
  // the command's own from_json exception); the slot is then left empty.
  virtual void decode(std::size_t i, const record_view& r) = 0;
  // Applies the command in slot `i` to the state with r's context. Called in sequence order,
  // on one thread at a time. The slot may keep the command until it is decoded into again.
  virtual void apply(std::size_t i, const record_view& r) = 0;
  // Empties every slot (after a failure).
  virtual void clear() = 0;
};

struct replay_hooks {
  // Decodes `r` and applies it to the state at once.
  std::function<void(const record_view&)> one;
  // A fresh set of slots for a batch, writing into the same state as `one`.
  std::function<std::unique_ptr<command_slots>()> make_slots;
};

}  // namespace prevalent::detail
