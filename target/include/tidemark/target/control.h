// The daemons' control API (docs/design.md#control-plane): JSON over HTTP/1.1
// (Boost.Beast), served on a unix socket by `tidemark protect` and
// `tidemark target serve`, and called by the CLI.
//
// Wire contract:
//   - Request and response bodies are JSON with Content-Type
//     application/json; an empty body means JSON null.
//   - A request body that is not JSON is answered 400 without calling the
//     handler; a body over 1 MiB is answered 413. Both carry the error body.
//   - Errors carry {"error": {"code": C, "message": M}} where C is
//     Status::CodeId ("not_found", "invalid_argument", ...). HTTP status per
//     code (ErrorResponse):
//       not_found 404, invalid_argument 400, not_supported 501,
//       try_again 503, aborted 409, no_space 507, corruption 500,
//       io_error 500.
//   - A handler that throws is answered 500 with code "aborted" and the
//     exception's what() in the message (a daemon bug: handlers should return
//     ErrorResponse instead). The server itself logs nothing.
//   - A response with non-empty `text` (GET /metrics, Prometheus text) is
//     sent as that text with its content type instead of JSON.
//
// Transport: only a unix socket today. The HTTP session is written against a
// generic Beast stream so that a TLS listener (decision 10) can reuse it;
// nothing here depends on the socket type.
//
// Thread-safety: ControlServer's Stop() and destructor may be called from any
// thread except a handler's; the handler is called concurrently from several
// server threads and must be thread-safe. ControlCall is reentrant.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "tidemark/journal/status.h"

namespace tidemark::target {

struct ControlRequest {
  std::string method;   // HTTP verb, upper case: "GET", "POST", ...
  std::string target;   // Path plus query, as sent: "/v1/points?volume=vm1".
  nlohmann::json body;  // Parsed request body; null when the body is empty.
};

struct ControlResponse {
  unsigned status = 200;     // HTTP status; outside 100..599 is sent as 500.
  nlohmann::json body;       // Sent as JSON unless `text` is non-empty; null
                             // sends an empty body.
  std::string text;          // When non-empty, sent verbatim instead of body.
  std::string content_type;  // Content type of `text`; empty means
                             // "text/plain; charset=utf-8".
};

// Serves one request. Called on a server thread; may block briefly (it holds
// one of a few server threads meanwhile). Must be thread-safe.
using ControlHandler = std::function<ControlResponse(const ControlRequest&)>;

class ControlServer {
 public:
  // Listens on the unix socket `unix_path` and serves requests with
  // `handler` on a small pool of server threads until Stop().
  //
  // The socket file gets mode 0600. A stale socket file (nobody accepts on
  // it) is replaced. Errors: kInvalidArgument when the path is too long for a
  // unix socket, exists and is not a socket, or a live server already answers
  // there; kIOError when the socket cannot be created or bound.
  static Result<std::unique_ptr<ControlServer>> Start(
      const std::string& unix_path, ControlHandler handler);

  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;
  ~ControlServer();  // Stop()s.

  // Stops accepting, closes every connection (a request in flight loses its
  // answer; a running handler is waited for), joins the server threads and
  // removes the socket file if it is still ours. Idempotent. Must not be
  // called from inside the handler (it would join its own thread).
  void Stop();

  // The socket path given to Start().
  const std::string& path() const;

 private:
  struct Impl;
  explicit ControlServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One client call: connects to the unix socket `unix_path`, sends `method`
// (an HTTP verb) on `target` with `body` (null sends no body), and waits at
// most `timeout` in total.
//
// Returns the JSON body of a 2xx answer (null when empty; a non-JSON answer
// such as /metrics comes back as a JSON string). Errors:
//   - a non-2xx answer: the Status named by body.error.code with
//     body.error.message; without a known code, one derived from the HTTP
//     status (404 kNotFound, 400/413 kInvalidArgument, 501 kNotSupported,
//     503 kTryAgain, 507 kNoSpace, 409 kAborted, others kIOError);
//   - kTryAgain "no daemon answers at PATH" when the socket is missing or
//     refuses connections;
//   - kTryAgain on timeout, or when the daemon closes the connection before
//     answering: the request may or may not have taken effect;
//   - kInvalidArgument for an unknown verb or a path too long for a socket;
//   - kIOError for other socket errors or an answer that is not valid JSON.
Result<nlohmann::json> ControlCall(
    const std::string& unix_path, std::string_view method,
    std::string_view target, const nlohmann::json& body,
    std::chrono::milliseconds timeout = std::chrono::seconds(10));

// The contract's error body {"error": {"code": CodeId, "message": message}}.
// `s` must not be ok (a bug: aborts).
nlohmann::json ErrorBody(const Status& s);

// ErrorBody(s) with the HTTP status of its code (table above). `s` must not be
// ok (a bug: aborts).
ControlResponse ErrorResponse(const Status& s);

// The HTTP status ErrorResponse uses for `code` (kOk gives 200).
unsigned HttpStatusFor(Code code);

}  // namespace tidemark::target
