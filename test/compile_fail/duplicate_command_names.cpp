// Must not compile: two commands with the same name (a copy-pasted command that kept its
// name). Replay dispatches on the stored name, so it would run the first one for both.
// expect: two commands in the store's list have the same name
#include <prevalent/prevalent.hpp>

struct State {
  int n = 0;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(State, n)
};
struct Add {
  static constexpr std::string_view name = "add";
  int by = 0;
  int apply(State& s, const prevalent::Context&) { return s.n += by; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Add, by)
};
struct Multiply {
  static constexpr std::string_view name = "add";  // copied from Add, not renamed
  int by = 1;
  int apply(State& s, const prevalent::Context&) { return s.n *= by; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Multiply, by)
};

int main() { prevalent::Store<State, Add, Multiply> store(prevalent::in_memory); }
