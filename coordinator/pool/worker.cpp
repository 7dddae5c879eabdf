#include "worker.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/stdio.hpp>

#include "log.h"
#include "worker_protocol.h"

namespace mcpd::pool {

namespace asio = boost::asio;
namespace bp = boost::process::v2;

namespace {

/// Runs in the child between fork and exec: its own process group (so a kill reaches the worker's
/// children too), death when the coordinator dies, and the hard memory limit.
struct ChildSetup {
  rlim_t address_space_limit;
  template <class Launcher>
  bp::error_code on_exec_setup(Launcher&, const bp::filesystem::path&, const char* const*) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (address_space_limit > 0) {
      rlimit limit{address_space_limit, address_space_limit};
      ::setrlimit(RLIMIT_AS, &limit);
    }
    return {};
  }
};

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "ended with wait status " + std::to_string(status);
}

}  // namespace

const char* to_string(Worker::State state) {
  switch (state) {
    case Worker::State::starting: return "starting";
    case Worker::State::idle: return "idle";
    case Worker::State::busy: return "busy";
    case Worker::State::draining: return "draining";
    case Worker::State::dead: return "dead";
  }
  return "?";
}

Worker::Worker(asio::io_context& loop, std::uint64_t id, LaunchSpec spec, Events events)
    : loop_(loop),
      id_(id),
      spec_(std::move(spec)),
      events_(std::move(events)),
      stdin_(loop),
      stdout_(loop),
      stderr_(loop),
      reader_(spec_.max_frame_bytes),
      read_buffer_(64 * 1024),
      stderr_buffer_(8 * 1024) {}

Worker::~Worker() {
  // The pool keeps a Worker until it is reaped; this is the backstop for a pool torn down early.
  if (pid_ > 0 && !reaped_) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

void Worker::start() {
  started_at_ = Clock::now();
  try {
    // The child inherits our environment, where main() put MCPD_WORKER_CONFIG before any thread
    // started (Boost 1.81's process_environment is not usable header-only).
    bp::process child(loop_.get_executor(), spec_.executable, std::vector<std::string>{},
                      bp::process_stdio{stdin_, stdout_, stderr_},
                      ChildSetup{static_cast<rlim_t>(spec_.address_space_limit)});
    pid_ = child.id();
    // We watch the exit ourselves (below) because v2's async_wait reduces the wait status to an
    // int and loses the signal that ended the worker, which is what an operator needs to read.
    child.detach();
  } catch (const std::exception& e) {
    lose("cannot start worker '" + spec_.executable + "': " + e.what());
    reaped_ = true;
    asio::post(loop_, [self = shared_from_this()] {
      if (self->events_.on_reaped) self->events_.on_reaped(*self);
    });
    return;
  }
  watch_exit();
  read_frames();
  read_stderr();
}

void Worker::watch_exit() {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  if (fd < 0) {
    // Kernels before 5.3 have no pidfd; EOF on stdout still tells us of the death, and the reap
    // then happens when the pool kills the group.
    log_warning("pidfd_open failed; relying on pipe EOF", {{"worker", spec_.kind}, {"pid", pid_}});
    return;
  }
  pidfd_ = std::make_unique<asio::posix::stream_descriptor>(loop_, fd);
  pidfd_->async_wait(asio::posix::stream_descriptor::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       if (ec) return;
                       int status = 0;
                       if (::waitpid(self->pid_, &status, WNOHANG) == self->pid_) self->on_exit_status(status);
                     });
}

void Worker::on_exit_status(int status) {
  exit_description_ = describe_status(status);
  lose("worker process " + exit_description_);
  reaped_ = true;
  state = State::dead;
  if (pidfd_) pidfd_->close();
  boost::system::error_code ignored;
  stdin_.close(ignored);
  if (stop_timer_) stop_timer_->cancel();
  if (events_.on_reaped) events_.on_reaped(*this);
}

void Worker::lose(const std::string& reason) {
  if (lost_) return;
  lost_ = true;
  state = State::dead;
  if (events_.on_lost) events_.on_lost(*this, reason);
}

void Worker::kill(const std::string& reason) {
  if (pid_ > 0 && !reaped_) {
    ::kill(-pid_, SIGKILL);  // the whole group: the worker's own children die with it
    ::kill(pid_, SIGKILL);
  }
  lose(reason);
}

void Worker::stop(std::chrono::milliseconds grace) {
  if (reaped_ || pid_ <= 0) return;
  state = State::draining;
  send({{"type", "shutdown"}});
  stop_timer_ = std::make_unique<asio::steady_timer>(loop_, grace);
  stop_timer_->async_wait([self = shared_from_this(), grace](const boost::system::error_code& ec) {
    if (ec || self->reaped_) return;
    ::kill(-self->pid_, SIGTERM);
    self->stop_timer_->expires_after(grace);
    self->stop_timer_->async_wait([self](const boost::system::error_code& ec2) {
      if (ec2 || self->reaped_) return;
      self->kill("did not exit after shutdown and SIGTERM");
    });
  });
}

void Worker::send(const json& frame) {
  if (lost_) return;
  write_queue_.push_back(encode_frame(frame));
  if (!writing_) flush_writes();
}

void Worker::flush_writes() {
  if (write_queue_.empty() || lost_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  // Coalesce everything queued into one write.
  auto batch = std::make_shared<std::string>();
  for (auto& f : write_queue_) *batch += f;
  write_queue_.clear();
  asio::async_write(stdin_, asio::buffer(*batch),
                    [self = shared_from_this(), batch](const boost::system::error_code& ec, std::size_t) {
                      if (ec) {
                        self->writing_ = false;
                        self->kill("broken pipe writing to the worker: " + ec.message());
                        return;
                      }
                      self->flush_writes();
                    });
}

void Worker::read_frames() {
  stdout_.async_read_some(asio::buffer(read_buffer_), [self = shared_from_this()](
                                                          const boost::system::error_code& ec, std::size_t n) {
    if (ec) {
      // EOF or error on the worker's stdout: it is gone or going. Make sure it is, then report.
      auto truncated = self->reader_.finish();
      self->kill(truncated ? "worker closed its output mid-frame: " + truncated->message
                           : "worker closed its output (" + ec.message() + ")");
      return;
    }
    self->reader_.feed(std::string_view(self->read_buffer_.data(), n));
    for (;;) {
      auto event = self->reader_.next();
      if (event.kind == FrameReader::Event::Kind::need_more) break;
      if (event.kind == FrameReader::Event::Kind::error && event.error.kind == FrameReader::Error::Kind::too_deep &&
          self->hello_seen_ && !self->calls.empty()) {
        // A well-formed frame, only nested deeper than we read: the answer to the running call,
        // which a tool failed to bound. The stream is still in step, so the call fails and the
        // worker, healthy, stays.
        json failed = {{"type", "error"},
                       {"id", self->calls.front()},
                       {"kind", "failed"},
                       {"message", "the worker's answer was refused: " + event.error.message +
                                       " (the tool did not keep its result within the depth a result may have)"}};
        if (self->events_.on_frame) self->events_.on_frame(*self, std::move(failed));
        if (self->lost_) return;
        continue;
      }
      if (event.kind == FrameReader::Event::Kind::error) {
        self->kill("protocol error: the worker sent a bad frame: " + event.error.message);
        return;
      }
      json& frame = event.frame;
      if (!self->hello_seen_) {
        if (frame.value("type", "") != "hello") {
          self->kill("protocol error: first frame was not hello");
          return;
        }
        if (frame.value("protocol", 0) != worker_protocol::version) {
          self->kill("protocol error: worker speaks protocol version " + frame.value("protocol", json()).dump() +
                     ", we speak " + std::to_string(worker_protocol::version));
          return;
        }
        self->hello_seen_ = true;
        self->ready_at_ = Clock::now();
        if (self->events_.on_ready) self->events_.on_ready(*self, frame);
      } else if (self->events_.on_frame) {
        self->events_.on_frame(*self, std::move(frame));
      }
      if (self->lost_) return;
    }
    self->read_frames();
  });
}

void Worker::read_stderr() {
  stderr_.async_read_some(asio::buffer(stderr_buffer_), [self = shared_from_this()](
                                                            const boost::system::error_code& ec, std::size_t n) {
    auto emit = [&](const std::string& line) {
      if (line.empty()) return;
      log_info("worker stderr", {{"worker", self->spec_.kind}, {"pid", self->pid_}, {"line", line}});
    };
    if (ec) {
      emit(self->stderr_line_);
      return;
    }
    for (std::size_t i = 0; i < n; ++i) {
      char c = self->stderr_buffer_[i];
      if (c == '\n') {
        emit(self->stderr_line_);
        self->stderr_line_.clear();
      } else if (self->stderr_line_.size() < 8192) {  // a runaway line is cut, never unbounded
        self->stderr_line_ += c;
      }
    }
    self->read_stderr();
  });
}

std::uint64_t Worker::rss_bytes() const {
  if (pid_ <= 0 || reaped_) return 0;
  std::ifstream statm("/proc/" + std::to_string(pid_) + "/statm");
  std::uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace mcpd::pool
