// Running a module executable with pipes and a time limit. [setup]/[control].
#include "modules/registry/spawn.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace rackd::registry {
namespace {

constexpr std::size_t kMaxCapture = 1 << 20;

struct Pipe {
  int fd[2] = {-1, -1};
  ~Pipe() {
    for (int f : fd)
      if (f >= 0) close(f);
  }
};

}  // namespace

Captured run_captured(const std::vector<std::string>& argv, std::chrono::milliseconds limit) {
  Captured c;
  Pipe out, err;
  if (pipe2(out.fd, O_CLOEXEC) != 0 || pipe2(err.fd, O_CLOEXEC) != 0) {
    c.error = std::string("pipe: ") + std::strerror(errno);
    return c;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out.fd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err.fd[1], 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own process group, so a describe that forks cannot outlive the limit;
  // default signal handling and an empty mask whatever the caller blocked.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    c.error = std::strerror(rc);
    return c;
  }
  c.started = true;
  close(out.fd[1]);
  out.fd[1] = -1;
  close(err.fd[1]);
  err.fd[1] = -1;

  const auto deadline = std::chrono::steady_clock::now() + limit;
  bool open[2] = {true, true};
  while (open[0] || open[1]) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      c.timed_out = true;
      break;
    }
    pollfd p[2] = {{out.fd[0], POLLIN, 0}, {err.fd[0], POLLIN, 0}};
    for (int k = 0; k < 2; ++k)
      if (!open[k]) p[k].fd = -1;
    const int n = poll(p, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int k = 0; k < 2; ++k) {
      if (!open[k] || !(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[8192];
      const ssize_t got = read(p[k].fd, buf, sizeof buf);
      if (got <= 0) {
        if (got < 0 && errno == EINTR) continue;
        open[k] = false;
        continue;
      }
      std::string& into = k == 0 ? c.out : c.err;
      if (into.size() < kMaxCapture) into.append(buf, static_cast<std::size_t>(got));
    }
  }
  if (c.timed_out) kill(-pid, SIGKILL);
  int status = 0;
  // After the pipes closed the process is ending; a bounded wait would only
  // matter for one that closed both and then hung, so give it the rest of the
  // limit and kill it then.
  for (;;) {
    const pid_t w = waitpid(pid, &status, c.timed_out ? 0 : WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (w == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        c.timed_out = true;
        kill(-pid, SIGKILL);
      } else {
        usleep(2000);
      }
    }
  }
  if (WIFEXITED(status)) c.exit_status = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) c.signal = WTERMSIG(status);
  return c;
}

std::string describe_failure(const Captured& c, std::chrono::milliseconds limit) {
  if (!c.started) return "cannot run it: " + c.error;
  if (c.timed_out) {
    return "did not answer --describe within " + std::to_string(limit.count() / 1000.0).substr(0, 3) + " s (killed)";
  }
  if (c.signal) return "--describe was killed by signal " + std::to_string(c.signal) + " (" + strsignal(c.signal) + ")";
  return "--describe exited with status " + std::to_string(c.exit_status);
}

}  // namespace rackd::registry
