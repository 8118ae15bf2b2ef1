// Must not compile: `aliases` that is not an array of names (a single string here). Without
// the check replay would silently ignore it and the old records would be unknown commands.
// expect: a command's `aliases` must be a constant array of its earlier names
#include <prevalent/prevalent.hpp>

struct State {
  int n = 0;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(State, n)
};
struct Add {
  static constexpr std::string_view name = "add";
  static constexpr std::string_view aliases = "increment";
  int by = 0;
  int apply(State& s, const prevalent::Context&) { return s.n += by; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Add, by)
};

int main() { prevalent::Store<State, Add> store(prevalent::in_memory); }
