// Must not compile: a command type without apply(State&, const Context&).
// expect: every command needs `apply(State&, const prevalent::Context&)`
#include <prevalent/prevalent.hpp>

struct State {
  int n = 0;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(State, n)
};
struct Add {
  static constexpr std::string_view name = "add";
  int by = 0;
  void run(State& s) { s.n += by; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Add, by)
};

int main() { prevalent::Store<State, Add> store(prevalent::in_memory); }
