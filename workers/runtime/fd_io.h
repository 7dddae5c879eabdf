// Whole reads and writes on a descriptor: retried on EINTR and short transfers, and waited out on
// EAGAIN, so the same call serves a blocking pipe and a non-blocking one a parent handed over.
#pragma once

#include <cstddef>
#include <string_view>

namespace mcpd {

/// Blocks until `fd` is ready for `events` (POLLIN, POLLOUT).
void wait_ready(int fd, short events);

/// Writes all of `bytes`; false on an error (EPIPE once the reader is gone) with errno set.
bool write_all(int fd, std::string_view bytes);

/// Reads exactly `size` bytes into `data`; false at end of file before that, or on an error.
bool read_all(int fd, void* data, std::size_t size);

}  // namespace mcpd
