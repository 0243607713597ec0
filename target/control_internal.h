// Private to target/: pieces shared by the control server and client.
#pragma once

#include <string>

#include "tidemark/journal/status.h"

namespace tidemark::target::internal {

// Ok when `path` fits a sockaddr_un (Asio throws on a longer one).
Status CheckUnixPath(const std::string& path);

// Request and response bodies above this size are refused (413 / kIOError).
inline constexpr unsigned kMaxBodyBytes = 1u << 20;

}  // namespace tidemark::target::internal
