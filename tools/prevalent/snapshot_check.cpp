// snapshot_problem: whether a snapshot verifies as an open needs it (header, checksums,
// decompression, authentication, and a state that decodes in its codec). verify reports what
// it says; repair moves a snapshot it rejects into the backup.
#include "common.hpp"
#include "prevalent/codec.hpp"
#include "prevalent/error.hpp"

namespace prevalent::tool {

std::optional<std::string> snapshot_problem(const StoreDir& store, const store_file& s) {
  try {
    const auto loaded = store.load_snapshot(s);
    if (!prevalent::decode(loaded.payload, loaded.header.codec))
      return store.describe(s.name) + ": the state does not decode as " +
             codec_name(loaded.header.codec);
    return std::nullopt;
  } catch (const prevalent::error& e) {
    if (e.code() == errc::encryption_mismatch) throw;  // a key problem, not damage
    return std::string(e.what());
  } catch (const tool_error& e) {
    return std::string(e.what());
  }
}

}  // namespace prevalent::tool
