// Must not compile: a command with a field and no nlohmann_json serialization (only a
// command with no fields may go without one).
// expect: every command must be serializable with nlohmann_json
#include <prevalent/prevalent.hpp>

struct State {
  int n = 0;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(State, n)
};
struct Add {
  static constexpr std::string_view name = "add";
  int by = 0;
  void apply(State& s, const prevalent::Context&) { s.n += by; }
};

int main() { prevalent::Store<State, Add> store(prevalent::in_memory); }
