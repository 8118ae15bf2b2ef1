// A single-node etcd for the tests of prevalent-ha: started on 127.0.0.1 with free ports and a
// temporary --data-dir, ready once GET /health answers, stopped by PID (SIGCONT, SIGTERM, then
// SIGKILL after 5 s) when the object goes, also when a test fails. The child gets
// PR_SET_PDEATHSIG, so a test process killed by meson's timeout takes its etcd with it.
// The binary: $PREVALENT_ETCD, else /usr/bin/etcd (Debian etcd-server); ha_main.cpp skips the
// suite (exit 77) when it is missing.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "prevalent/ha/etcd_client.hpp"

namespace prevalent::ha::test {

inline std::string etcd_binary() {
  const char* env = std::getenv("PREVALENT_ETCD");
  return env != nullptr && *env != '\0' ? env : "/usr/bin/etcd";
}

// A port the kernel just gave out on 127.0.0.1 (free at that moment).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("free_port: socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("free_port: bind failed");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

class EtcdProcess {
 public:
  EtcdProcess() {
    char tmpl[] = "/tmp/prevalent-etcd-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("EtcdProcess: mkdtemp failed");
    dir_ = tmpl;
    for (int attempt = 0; attempt < 3; ++attempt) {  // a port taken meanwhile: try others
      if (launch()) return;
      stop();
    }
    throw std::runtime_error("EtcdProcess: etcd did not become healthy; its log:\n" + log());
  }
  ~EtcdProcess() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;

  const std::string& endpoint() const { return endpoint_; }
  pid_t pid() const { return pid_; }
  void pause() const { ::kill(pid_, SIGSTOP); }
  void resume() const { ::kill(pid_, SIGCONT); }

  std::string log() const {
    std::ifstream in(dir_ / "etcd.log");
    std::stringstream s;
    s << in.rdbuf();
    const std::string all = s.str();
    return all.size() > 4000 ? all.substr(all.size() - 4000) : all;
  }

 private:
  bool launch() {
    const int client = free_port();
    int peer = free_port();
    while (peer == client) peer = free_port();
    endpoint_ = "http://127.0.0.1:" + std::to_string(client);
    const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer);
    std::vector<std::string> args = {etcd_binary(),
                                     "--name=test",
                                     "--data-dir=" + (dir_ / "data").string(),
                                     "--listen-client-urls=" + endpoint_,
                                     "--advertise-client-urls=" + endpoint_,
                                     "--listen-peer-urls=" + peer_url,
                                     "--initial-advertise-peer-urls=" + peer_url,
                                     "--initial-cluster=test=" + peer_url,
                                     "--initial-cluster-state=new"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string log_path = (dir_ / "etcd.log").string();
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("EtcdProcess: fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    const EtcdClient probe({endpoint_, std::chrono::milliseconds(200)});
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < give_up) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      if (probe.healthy()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  std::filesystem::path dir_;
  std::string endpoint_;
  pid_t pid_ = -1;
};

}  // namespace prevalent::ha::test
