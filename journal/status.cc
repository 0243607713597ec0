#include "tidemark/journal/status.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tidemark {

Status Status::FromErrno(int err, std::string_view what) {
  std::string m = std::string(what) + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return NoSpace(std::move(m));
  return IOError(std::move(m));
}

std::string_view Status::CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kNotFound: return "not found";
    case Code::kCorruption: return "corruption";
    case Code::kIOError: return "I/O error";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kNotSupported: return "not supported";
    case Code::kNoSpace: return "no space";
    case Code::kTryAgain: return "try again";
    case Code::kAborted: return "aborted";
  }
  return "unknown";
}

std::string_view Status::CodeId(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kNotFound: return "not_found";
    case Code::kCorruption: return "corruption";
    case Code::kIOError: return "io_error";
    case Code::kInvalidArgument: return "invalid_argument";
    case Code::kNotSupported: return "not_supported";
    case Code::kNoSpace: return "no_space";
    case Code::kTryAgain: return "try_again";
    case Code::kAborted: return "aborted";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(CodeName(code_)) + ": " + message_;
}

Status Status::Annotate(std::string_view context) const {
  if (ok()) return *this;
  return Status(code_, std::string(context) + ": " + message_);
}

namespace internal {
void CheckFailed(const char* cond, const char* file, int line) {
  std::fprintf(stderr, "tidemark: check failed: %s at %s:%d\n", cond, file, line);
  std::abort();
}
}  // namespace internal

}  // namespace tidemark
