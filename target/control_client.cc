// ControlCall and the error-body helpers of the control API.
#include <sys/un.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "control_internal.h"
#include "tidemark/target/control.h"

namespace tidemark::target {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;
using nlohmann::json;
using UnixProtocol = net::local::stream_protocol;

constexpr Code kErrorCodes[] = {Code::kNotFound,     Code::kCorruption,
                                Code::kIOError,      Code::kInvalidArgument,
                                Code::kNotSupported, Code::kNoSpace,
                                Code::kTryAgain,     Code::kAborted};

Code CodeForHttpStatus(unsigned status) {
  switch (status) {
    case 404:
      return Code::kNotFound;
    case 400:
    case 413:
      return Code::kInvalidArgument;
    case 409:
      return Code::kAborted;
    case 501:
      return Code::kNotSupported;
    case 503:
      return Code::kTryAgain;
    case 507:
      return Code::kNoSpace;
    default:
      return Code::kIOError;
  }
}

// The Status a non-2xx answer stands for.
Status StatusFromAnswer(unsigned status, const json& body) {
  Code code = CodeForHttpStatus(status);
  std::string message = "HTTP " + std::to_string(status);
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    const json& err = body["error"];
    if (err.contains("code") && err["code"].is_string()) {
      const std::string& id = err["code"].get_ref<const std::string&>();
      for (Code c : kErrorCodes) {
        if (Status::CodeId(c) == id) code = c;
      }
    }
    if (err.contains("message") && err["message"].is_string()) {
      message = err["message"].get<std::string>();
    }
  }
  return Status(code, std::move(message));
}

Status FromTransportError(const error_code& ec, const std::string& path) {
  if (ec == net::error::connection_refused || ec == net::error::not_found ||
      ec == boost::system::errc::no_such_file_or_directory) {
    return Status::TryAgain("no daemon answers at " + path);
  }
  if (ec == beast::error::timeout)
    return Status::TryAgain("daemon at " + path + " timed out");
  if (ec == http::error::end_of_stream || ec == net::error::eof ||
      ec == net::error::connection_reset || ec == net::error::broken_pipe) {
    return Status::TryAgain("daemon at " + path +
                            " closed the connection before answering");
  }
  return Status::IOError("control call to " + path + ": " + ec.message());
}

}  // namespace

namespace internal {
Status CheckUnixPath(const std::string& path) {
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
    return Status::InvalidArgument(
        "unix socket path must be 1 to " +
        std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes: " + path);
  }
  return Status::Ok();
}
}  // namespace internal

unsigned HttpStatusFor(Code code) {
  switch (code) {
    case Code::kOk:
      return 200;
    case Code::kNotFound:
      return 404;
    case Code::kInvalidArgument:
      return 400;
    case Code::kNotSupported:
      return 501;
    case Code::kTryAgain:
      return 503;
    case Code::kAborted:
      return 409;
    case Code::kNoSpace:
      return 507;
    case Code::kCorruption:
    case Code::kIOError:
      return 500;
  }
  return 500;
}

json ErrorBody(const Status& s) {
  TM_CHECK(!s.ok());
  return json{{"error",
               {{"code", Status::CodeId(s.code())}, {"message", s.message()}}}};
}

ControlResponse ErrorResponse(const Status& s) {
  ControlResponse r;
  r.status = HttpStatusFor(s.code());
  r.body = ErrorBody(s);
  return r;
}

Result<json> ControlCall(const std::string& unix_path, std::string_view method,
                         std::string_view target, const json& body,
                         std::chrono::milliseconds timeout) {
  TM_RETURN_IF_ERROR(internal::CheckUnixPath(unix_path));
  http::verb verb =
      http::string_to_verb(beast::string_view(method.data(), method.size()));
  if (verb == http::verb::unknown) {
    return Status::InvalidArgument("unknown HTTP method " +
                                   std::string(method));
  }
  http::request<http::string_body> req(
      verb, beast::string_view(target.data(), target.size()), 11);
  req.set(http::field::host, "localhost");
  req.keep_alive(false);
  if (!body.is_null()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  req.prepare_payload();

  // Asynchronous operations on a private io_context, so that one deadline
  // (basic_stream's timer) covers connect, write and read together.
  net::io_context ioc(1);
  beast::basic_stream<UnixProtocol> stream(ioc);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(internal::kMaxBodyBytes);
  error_code result;
  stream.expires_after(timeout);
  stream.async_connect(UnixProtocol::endpoint(unix_path), [&](error_code ec) {
    if (ec) {
      result = ec;
      return;
    }
    http::async_write(stream, req, [&](error_code wec, std::size_t) {
      if (wec) {
        result = wec;
        return;
      }
      http::async_read(stream, buffer, parser,
                       [&](error_code rec, std::size_t) { result = rec; });
    });
  });
  ioc.run();
  if (result) return FromTransportError(result, unix_path);

  const http::response<http::string_body>& res = parser.get();
  unsigned status = res.result_int();
  json answer;
  std::string_view content_type(res[http::field::content_type].data(),
                                res[http::field::content_type].size());
  if (!res.body().empty()) {
    if (content_type.rfind("application/json", 0) == 0) {
      answer = json::parse(res.body(), nullptr, /*allow_exceptions=*/false);
      if (answer.is_discarded()) {
        return Status::IOError("daemon at " + unix_path + " answered HTTP " +
                               std::to_string(status) + " with invalid JSON");
      }
    } else {
      answer = res.body();
    }
  }
  if (status < 200 || status > 299) return StatusFromAnswer(status, answer);
  return answer;
}

}  // namespace tidemark::target
