// Must not compile: async_execute of a command the AsyncStore was not declared with.
// expect: this command type is not in the store's command list
#include <boost/asio/io_context.hpp>
#include <prevalent/asio.hpp>

struct State {
  int n = 0;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(State, n)
};
struct Add {
  static constexpr std::string_view name = "add";
  int by = 0;
  void apply(State& s, const prevalent::Context&) { s.n += by; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Add, by)
};
struct Reset {
  static constexpr std::string_view name = "reset";
  int unused = 0;
  void apply(State& s, const prevalent::Context&) { s.n = 0; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Reset, unused)
};

int main() {
  boost::asio::io_context io;
  prevalent::AsyncStore<State, Add> store(io.get_executor(),
                                          prevalent::Store<State, Add>(prevalent::in_memory));
  store.async_execute(Reset{}, [](std::error_code) {});
}
