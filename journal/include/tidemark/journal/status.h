// Status and Result<T>: the error currency shared by every tidemark module.
//
// A Status is a code and a one-line message. It is [[nodiscard]]: dropping one
// silently is a compile error under -Werror; drop it on purpose with
// .IgnoreError(), which stays greppable. Result<T> is a Boost.Outcome result
// whose error is a Status; a Result constructed from a failing Status holds
// that error, and reading .value() of a failed Result terminates (a bug).
//
// Thread-safety: value types; distinct objects may be used from any thread.
#pragma once

#include <boost/outcome.hpp>
#include <string>
#include <string_view>
#include <utility>

namespace tidemark {

enum class Code : unsigned char {
  kOk = 0,
  kNotFound,
  kCorruption,
  kIOError,
  kInvalidArgument,
  kNotSupported,
  kNoSpace,
  kTryAgain,
  kAborted,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status IOError(std::string m) { return {Code::kIOError, std::move(m)}; }
  static Status InvalidArgument(std::string m) {
    return {Code::kInvalidArgument, std::move(m)};
  }
  static Status NotSupported(std::string m) { return {Code::kNotSupported, std::move(m)}; }
  static Status NoSpace(std::string m) { return {Code::kNoSpace, std::move(m)}; }
  static Status TryAgain(std::string m) { return {Code::kTryAgain, std::move(m)}; }
  static Status Aborted(std::string m) { return {Code::kAborted, std::move(m)}; }
  // From an errno value: ENOSPC/EDQUOT become kNoSpace, the rest kIOError.
  static Status FromErrno(int err, std::string_view what);

  // Lets BOOST_OUTCOME_TRY propagate a failed Result<T> out of a function
  // that returns a plain Status.
  Status(boost::outcome_v2::failure_type<Status>&& f)  // NOLINT: implicit on purpose
      : Status(std::move(f.error())) {}

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // Stable lower-case name of the code ("not found", "corruption", ...).
  static std::string_view CodeName(Code code);
  // Stable identifier of the code for JSON ("not_found", "corruption", ...).
  static std::string_view CodeId(Code code);
  // "corruption: volume vm1 block 12 seq 40: CRC mismatch".
  std::string ToString() const;
  // Prefixes the message with context: "open journal /x: " + message.
  Status Annotate(std::string_view context) const;
  void IgnoreError() const {}

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

template <class T>
using Result = boost::outcome_v2::result<T, Status, boost::outcome_v2::policy::terminate>;

}  // namespace tidemark

// Returns the Status of `expr` from the enclosing function when it failed.
#define TM_RETURN_IF_ERROR(expr)               \
  do {                                         \
    ::tidemark::Status tm_status_ = (expr);    \
    if (!tm_status_.ok()) return tm_status_;   \
  } while (0)

// Aborts on a broken invariant (a bug, never bad input).
#define TM_CHECK(cond)                                                          \
  do {                                                                          \
    if (!(cond)) ::tidemark::internal::CheckFailed(#cond, __FILE__, __LINE__); \
  } while (0)

namespace tidemark::internal {
[[noreturn]] void CheckFailed(const char* cond, const char* file, int line);
}
