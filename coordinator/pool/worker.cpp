#include "worker.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "json_access.h"
#include "log.h"
#include "spawn.h"
#include "worker_protocol.h"

namespace mcpd::pool {

namespace asio = boost::asio;

namespace {

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
    SpawnedProcess child = spawn_process({spec_.executable, spec_.environment, spec_.address_space_limit,
                                          spec_.max_open_files, spec_.spawn_fault});
    pid_ = child.pid;
    try {
      stdin_.assign(child.stdin_fd);
      stdout_.assign(child.stdout_fd);
      stderr_.assign(child.stderr_fd);
    } catch (...) {
      // A worker we cannot speak to must not live on unseen.
      boost::system::error_code ignored;
      if (stdin_.is_open()) stdin_.close(ignored);
      else ::close(child.stdin_fd);
      if (stdout_.is_open()) stdout_.close(ignored);
      else ::close(child.stdout_fd);
      if (stderr_.is_open()) stderr_.close(ignored);
      else ::close(child.stderr_fd);
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      throw;
    }
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
  int fd = spec_.use_pidfd ? static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)) : -1;
  if (fd < 0) {
    // Kernels before 5.3 have no pidfd, and seccomp may refuse it (ENOSYS). EOF on stdout still
    // tells us of the death; lose() then reaps by polling waitpid, so the worker is erased and
    // shutdown does not wait for it forever.
    int error = spec_.use_pidfd ? errno : 0;
    log_warning("no pidfd for the worker; its exit is found by pipe EOF and reaped by polling",
                {{"worker", spec_.kind}, {"pid", pid_},
                 {"error", error ? std::string(std::strerror(error)) : std::string("turned off for a test")}});
    return;
  }
  pidfd_ = std::make_unique<asio::posix::stream_descriptor>(loop_, fd);
  pidfd_->async_wait(asio::posix::stream_descriptor::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       if (ec) return;
                       int status = 0;
                       if (::waitpid(self->pid_, &status, WNOHANG) == self->pid_) self->on_exit_status(status);
                       else self->poll_reap(std::chrono::milliseconds(5));  // never left unreaped
                     });
}

void Worker::poll_reap(std::chrono::milliseconds delay) {
  if (reaped_ || pid_ <= 0) return;
  if (!reap_timer_) reap_timer_ = std::make_unique<asio::steady_timer>(loop_);
  reap_timer_->expires_after(delay);
  reap_timer_->async_wait([self = shared_from_this(), delay](const boost::system::error_code& ec) {
    if (ec || self->reaped_) return;
    int status = 0;
    pid_t r = ::waitpid(self->pid_, &status, WNOHANG);
    if (r == self->pid_) {
      self->on_exit_status(status);
    } else if (r < 0 && errno == ECHILD) {
      // Reaped elsewhere: the exit status is lost, the process is not.
      self->on_exit_status(0);
      self->exit_description_ = "reaped elsewhere (exit status unknown)";
    } else {
      self->poll_reap(std::min(delay * 2, std::chrono::milliseconds(200)));
    }
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
  if (reap_timer_) reap_timer_->cancel();
  if (events_.on_reaped) events_.on_reaped(*this);
}

void Worker::lose(const std::string& reason) {
  if (lost_) return;
  lost_ = true;
  state = State::dead;
  // Without a pidfd nothing else will notice the exit: poll for it (the process was killed or is
  // exiting, so this ends within milliseconds).
  if (!pidfd_ && !reaped_) poll_reap(std::chrono::milliseconds(5));
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
  schedule_flush();
}

void Worker::send_text(std::string_view frame_json) {
  if (lost_) return;
  write_queue_.push_back(encode_frame_text(frame_json));
  schedule_flush();
}

void Worker::schedule_flush() {
  if (writing_) return;  // the write under way takes the queue when it completes
  // Written once the loop's current handler is done: the calls a read of several client lines
  // dispatches to this worker go in one write, and the worker reads them in one.
  writing_ = true;
  asio::post(stdin_.get_executor(), [self = shared_from_this()] { self->flush_writes(); });
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
        if (self->events_.on_frame) self->events_.on_frame(*self, std::move(failed), std::string());
        if (self->lost_) return;
        continue;
      }
      if (event.kind == FrameReader::Event::Kind::error) {
        self->kill("protocol error: the worker sent a bad frame: " + event.error.message);
        return;
      }
      json& frame = event.frame;
      if (!self->hello_seen_) {
        if (optional_string(frame, "type") != "hello") {
          self->kill("protocol error: first frame was not hello");
          return;
        }
        if (optional_int(frame, "protocol") != worker_protocol::version) {
          const json* given = member(frame, "protocol");
          self->kill("protocol error: worker speaks protocol version " + (given ? given->dump() : std::string("(none)")) +
                     ", we speak " + std::to_string(worker_protocol::version));
          return;
        }
        self->hello_seen_ = true;
        self->ready_at_ = Clock::now();
        if (self->events_.on_ready) self->events_.on_ready(*self, frame);
      } else if (self->events_.on_frame) {
        self->events_.on_frame(*self, std::move(frame), std::move(event.raw));
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
      json fields = {{"worker", self->spec_.kind}, {"pid", self->pid_}, {"line", line}};
      // The seccomp filter's last word names the forbidden system call: an operator must see it.
      if (line.find(": seccomp: ") != std::string::npos) log_warning("worker stderr", std::move(fields));
      else log_info("worker stderr", std::move(fields));
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

char Worker::process_state() const {
  if (pid_ <= 0 || reaped_) return 0;
  std::ifstream stat("/proc/" + std::to_string(pid_) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return 0;
  // The command name in parentheses may itself hold spaces and ')': the state follows the last.
  auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() ? 0 : line[close + 2];
}

std::uint64_t Worker::rss_bytes() const {
  if (pid_ <= 0 || reaped_) return 0;
  std::ifstream statm("/proc/" + std::to_string(pid_) + "/statm");
  std::uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace mcpd::pool
