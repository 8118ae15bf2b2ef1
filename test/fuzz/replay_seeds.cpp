// Runs a libFuzzer target's entry point over every file of its seed corpus, without libFuzzer:
// the regular (g++) test build compiles each fuzz target with this main, so that a target that
// no longer compiles, or a seed that once crashed it, fails `meson test` and not only the
// clang-only fuzz run in CI.
//   <target>_seeds DIRECTORY...
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  std::size_t inputs = 0;
  for (int i = 1; i < argc; ++i) {
    for (const auto& entry : std::filesystem::directory_iterator(argv[i])) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      const std::vector<char> bytes{std::istreambuf_iterator<char>(in), {}};
      std::printf("%s (%zu bytes)\n", entry.path().filename().c_str(), bytes.size());
      std::fflush(stdout);  // a crash below names the input it died on
      LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
      ++inputs;
    }
  }
  std::printf("%zu seed inputs ran without a failure\n", inputs);
  return inputs > 0 ? 0 : 1;  // an empty or missing corpus is a mistake, not a pass
}
