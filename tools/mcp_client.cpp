#include "mcp_client.h"

#include <string_view>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "json_access.h"
#include "jsonrpc.h"
#include "line_reader.h"

extern char** environ;

namespace mcpd {

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const Options& options) {
  if (argv.empty()) throw std::invalid_argument("empty server command");
  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  if (!options.stderr_path.empty())
    posix_spawn_file_actions_addopen(&actions, 2, options.stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (!options.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, options.cwd.c_str());

  std::vector<std::string> env_storage;
  // A variable given in env_extra replaces ours: with both, getenv would find ours first.
  auto overridden = [&options](std::string_view entry) {
    std::string_view name = entry.substr(0, entry.find('='));
    for (const auto& kv : options.env_extra)
      if (std::string_view(kv).substr(0, kv.find('=')) == name) return true;
    return false;
  };
  for (char** e = environ; e && *e; ++e)
    if (!overridden(*e)) env_storage.emplace_back(*e);
  for (const auto& kv : options.env_extra) env_storage.push_back(kv);
  std::vector<char*> envp, args;
  for (auto& kv : env_storage) envp.push_back(kv.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);

  int rc = ::posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  if (rc != 0) {
    ::close(in_pipe[1]);
    ::close(out_pipe[0]);
    throw std::runtime_error("cannot start '" + argv[0] + "': " + std::strerror(rc));
  }
  in_ = in_pipe[1];
  out_ = out_pipe[0];
}

ChildProcess::~ChildProcess() {
  close_stdin();
  if (out_ >= 0) ::close(out_);
  if (pid_ > 0 && !status_) {
    if (!wait(std::chrono::milliseconds(2000))) {
      ::kill(pid_, SIGKILL);
      wait(std::chrono::milliseconds(5000));
    }
  }
}

void ChildProcess::close_stdin() {
  if (in_ >= 0) ::close(in_);
  in_ = -1;
}

void ChildProcess::close_stdout() {
  if (out_ >= 0) ::close(out_);
  out_ = -1;
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = status;
      return status_;
    }
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

McpClient::McpClient(const std::vector<std::string>& argv, const ChildProcess::Options& options)
    : child_(argv, options) {
  reader_ = std::thread([this] { read_loop(); });
}

McpClient::~McpClient() {
  resume_reading();
  child_.close_stdin();
  // The reader ends at the server's EOF; the ChildProcess destructor kills a server that lingers.
  if (!child_.wait(std::chrono::milliseconds(5000))) ::kill(child_.pid(), SIGKILL);
  if (reader_.joinable()) reader_.join();
}

void McpClient::read_loop() {
  LineReader reader(std::size_t{1} << 30);
  std::string chunk(64 * 1024, '\0');
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      unpaused_.wait(lock, [this] { return !paused_; });
    }
    ssize_t n = ::read(child_.stdout_fd(), chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reader.feed(std::string_view(chunk.data(), static_cast<std::size_t>(n)));
    for (;;) {
      auto event = reader.next();
      if (event.kind != LineReader::Event::Kind::line) break;
      json message;
      try {
        message = json::parse(event.line);
      } catch (const json::exception&) {
        message = {{"mcp_client_garbage", event.line}};
      }
      std::lock_guard lock(mutex_);
      if (message.is_object() && message.contains("method") && !message.contains("id")) {
        notifications_.push_back(std::move(message));
      } else if (message.is_object() && message.contains("id") && is_valid_id(message["id"])) {
        // Key first: json's operator= takes its argument by value and C++17 evaluates the right
        // side of '=' first, so the message would be moved from before its id was read.
        std::string key = id_key(message["id"]);
        responses_[key] = std::move(message);
      } else {
        unmatched_.push_back(std::move(message));
      }
      arrived_.notify_all();
    }
  }
  std::lock_guard lock(mutex_);
  closed_ = true;
  arrived_.notify_all();
}

void McpClient::send_raw(const std::string& bytes) {
  std::lock_guard lock(write_mutex_);
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(child_.stdin_fd(), bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("server stdin closed");
    off += static_cast<std::size_t>(n);
  }
}

json McpClient::send_request(const std::string& method, const json& params, std::optional<json> id) {
  json the_id;
  if (id) {
    the_id = *id;
  } else {
    std::lock_guard lock(mutex_);
    the_id = next_id_++;
  }
  send_raw(make_request(the_id, method, params).dump() + "\n");
  return the_id;
}

std::optional<json> McpClient::wait_response(const json& id, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  std::string key = id_key(id);
  bool got = arrived_.wait_for(lock, timeout, [&] { return responses_.contains(key) || closed_; });
  if (!got || !responses_.contains(key)) return std::nullopt;
  json out = std::move(responses_[key]);
  responses_.erase(key);
  return out;
}

std::optional<json> McpClient::wait_unmatched(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  bool got = arrived_.wait_for(lock, timeout, [&] { return !unmatched_.empty() || closed_; });
  if (!got || unmatched_.empty()) return std::nullopt;
  json out = std::move(unmatched_.front());
  unmatched_.erase(unmatched_.begin());
  return out;
}

json McpClient::request(const std::string& method, const json& params, std::chrono::milliseconds timeout) {
  json id = send_request(method, params);
  auto response = wait_response(id, timeout);
  if (!response) throw std::runtime_error("no response to '" + method + "' within the timeout");
  return *response;
}

json McpClient::call_tool(const std::string& name, const json& arguments, std::chrono::milliseconds timeout) {
  json response = request("tools/call", {{"name", name}, {"arguments", arguments}}, timeout);
  if (const json* error = member(response, "error")) {
    const json* data = member(*error, "data");
    throw RpcError(static_cast<int>(optional_int(*error, "code").value_or(0)),
                   string_or(*error, "message", "(an error without a message: " + error->dump() + ")"),
                   data ? *data : json());
  }
  const json* result = member(response, "result");
  if (!result) throw std::runtime_error("response to tools/call without result or error: " + response.dump());
  return *result;
}

void McpClient::notify(const std::string& method, const json& params) {
  send_raw(make_notification(method, params).dump() + "\n");
}

json McpClient::initialize(const std::string& protocol_version) {
  json response = request("initialize", {{"protocolVersion", protocol_version},
                                         {"capabilities", json::object()},
                                         {"clientInfo", {{"name", "mcpd-client"}, {"version", "0.1.0"}}}});
  const json* result = member(response, "result");
  if (!result) throw std::runtime_error("initialize failed: " + response.dump());
  notify("notifications/initialized");
  return *result;
}

std::vector<json> McpClient::take_notifications() {
  std::lock_guard lock(mutex_);
  return std::exchange(notifications_, {});
}

std::optional<json> McpClient::wait_notification(const std::string& method, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  std::optional<json> found;
  arrived_.wait_for(lock, timeout, [&] {
    for (auto it = notifications_.begin(); it != notifications_.end(); ++it)
      if (optional_string(*it, "method") == method) {
        found = *it;
        notifications_.erase(it);
        return true;
      }
    return closed_;
  });
  return found;
}

void McpClient::pause_reading() {
  std::lock_guard lock(mutex_);
  paused_ = true;
}

void McpClient::resume_reading() {
  {
    std::lock_guard lock(mutex_);
    paused_ = false;
  }
  unpaused_.notify_all();
}

bool McpClient::server_closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

}  // namespace mcpd
