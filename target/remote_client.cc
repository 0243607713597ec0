// RemoteClient: Beast over TLS, each asynchronous step run to completion on
// a private io_context (synchronous calls with beast::tcp_stream's
// timeouts).
#include "tidemark/target/remote_client.h"

#include <algorithm>
#include <openssl/ssl.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>

#include "block_read.h"
#include "block_stream.h"

namespace tidemark::target {

namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using nlohmann::json;

constexpr uint64_t kMaxJsonBytes = 16 << 20;
constexpr size_t kReadChunk = 1 << 20;

template <class Start>
error_code Await(asio::io_context& ioc, Start&& start) {
  error_code result;
  start([&result](error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

// The Status of an error answer (control.h's table, and 401).
Status StatusFromAnswer(unsigned status, std::string_view text) {
  json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  std::string message = "HTTP " + std::to_string(status);
  std::string id;
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    const json& e = body["error"];
    if (e.contains("message") && e["message"].is_string())
      message = e["message"].get<std::string>();
    if (e.contains("code") && e["code"].is_string()) id = e["code"].get<std::string>();
  }
  if (status == 401) return Status::Aborted("unauthenticated: " + message);
  for (Code c : {Code::kNotFound, Code::kCorruption, Code::kIOError, Code::kInvalidArgument,
                 Code::kNotSupported, Code::kNoSpace, Code::kTryAgain, Code::kAborted}) {
    if (Status::CodeId(c) == id) return Status(c, message);
  }
  switch (status) {
    case 404:
      return Status::NotFound(message);
    case 400:
    case 413:
      return Status::InvalidArgument(message);
    case 409:
      return Status::Aborted(message);
    case 501:
      return Status::NotSupported(message);
    case 503:
      return Status::TryAgain(message);
    case 507:
      return Status::NoSpace(message);
    default:
      return Status::IOError(message);
  }
}

}  // namespace

struct RemoteClient::Impl {
  RemoteOptions o;
  std::string host, port;
  asio::io_context ioc{1};
  ssl::context tls{ssl::context::tls_client};
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream;
  beast::flat_buffer buffer;
  bool fresh = false;  // the connection has not carried a request yet

  Status Transport(const error_code& ec, std::string_view during) const {
    if (ec == beast::error::timeout) {
      return Status::TryAgain("the target at " + o.target + " timed out " + std::string(during));
    }
    if (ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
        ec == ssl::error::stream_truncated) {
      return Status::TryAgain("the target at " + o.target + " closed the connection " +
                              std::string(during));
    }
    return Status::IOError("control call to " + o.target + " failed " + std::string(during) + ": " +
                           ec.message());
  }

  Status Connect() {
    stream.reset();
    buffer.clear();
    error_code ec;
    tcp::resolver resolver(ioc);
    auto endpoints = resolver.resolve(host, port, ec);
    if (ec) return Status::IOError("cannot resolve " + host + ": " + ec.message());
    stream.emplace(ioc, tls);
    auto& lowest = beast::get_lowest_layer(*stream);
    lowest.expires_after(o.step_timeout);
    ec = Await(ioc, [&](auto h) { lowest.async_connect(endpoints, h); });
    if (ec) return Status::IOError("cannot connect to " + o.target + ": " + ec.message());
    SSL* ssl = stream->native_handle();
    SSL_set_tlsext_host_name(ssl, host.c_str());
    stream->set_verify_mode(ssl::verify_peer);
    stream->set_verify_callback(ssl::host_name_verification(host));
    static const unsigned char kAlpn[] = "\x08http/1.1";
    SSL_set_alpn_protos(ssl, kAlpn, sizeof kAlpn - 1);
    lowest.expires_after(o.step_timeout);
    ec = Await(ioc, [&](auto h) { stream->async_handshake(ssl::stream_base::client, h); });
    if (ec) {
      return Status::IOError("TLS with " + o.target +
                             " failed (is --ca the target's CA?): " + ec.message());
    }
    const unsigned char* alpn = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &len);
    if (std::string_view(reinterpret_cast<const char*>(alpn), len) != "http/1.1") {
      return Status::IOError("the target at " + o.target + " does not serve the control API");
    }
    fresh = true;
    return Status::Ok();
  }

  // Sends `req` on the connection (made again when the server closed it
  // between requests).
  Status Send(http::request<http::string_body>& req) {
    for (int attempt = 0;; ++attempt) {
      if (!stream) TM_RETURN_IF_ERROR(Connect());
      bool reused = !fresh;
      fresh = false;
      auto& lowest = beast::get_lowest_layer(*stream);
      lowest.expires_after(o.step_timeout);
      error_code ec = Await(ioc, [&](auto h) { http::async_write(*stream, req, h); });
      if (!ec) return Status::Ok();
      stream.reset();
      if (!reused || attempt > 0) return Transport(ec, "sending the request");
    }
  }

  http::request<http::string_body> Request(std::string_view method, const std::string& path,
                                           const json& body) const {
    http::request<http::string_body> req(
        http::string_to_verb(beast::string_view(method.data(), method.size())), path, 11);
    req.set(http::field::host, o.target);
    req.set(http::field::authorization, "Bearer " + o.token);
    req.set("X-Tidemark-Tenant", o.tenant);
    req.keep_alive(true);
    if (!body.is_null()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    req.prepare_payload();
    return req;
  }
};

Result<std::unique_ptr<RemoteClient>> RemoteClient::Create(const RemoteOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->o = options;
  auto colon = options.target.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == options.target.size()) {
    return Status::InvalidArgument("--target '" + options.target + "' is not HOST:PORT");
  }
  impl->host = options.target.substr(0, colon);
  impl->port = options.target.substr(colon + 1);
  if (impl->host.size() > 2 && impl->host.front() == '[' && impl->host.back() == ']') {
    impl->host = impl->host.substr(1, impl->host.size() - 2);
  }
  if (options.tenant.empty()) return Status::InvalidArgument("--tenant is empty");
  if (options.token.empty()) return Status::InvalidArgument("the token is empty");
  SSL_CTX_set_min_proto_version(impl->tls.native_handle(), TLS1_3_VERSION);
  error_code ec;
  impl->tls.load_verify_file(options.ca_file, ec);
  if (ec) {
    return Status::InvalidArgument("cannot load the target's CA " + options.ca_file + ": " +
                                   ec.message());
  }
  return std::unique_ptr<RemoteClient>(new RemoteClient(std::move(impl)));
}

RemoteClient::RemoteClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RemoteClient::~RemoteClient() = default;

std::string RemoteClient::VolumePath(std::string_view volume, std::string_view what) {
  static const char* hex = "0123456789ABCDEF";
  std::string out = "/v1/volumes/";
  for (unsigned char c : volume) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', hex[c >> 4], hex[c & 15]};
    }
  }
  return out + "/" + std::string(what);
}

Result<json> RemoteClient::Call(std::string_view method, const std::string& path,
                                const json& body) {
  Impl& in = *impl_;
  auto req = in.Request(method, path, body);
  TM_RETURN_IF_ERROR(in.Send(req));
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxJsonBytes);
  beast::get_lowest_layer(*in.stream).expires_after(in.o.step_timeout);
  error_code ec =
      Await(in.ioc, [&](auto h) { http::async_read(*in.stream, in.buffer, parser, h); });
  if (ec) {
    in.stream.reset();
    return in.Transport(ec, "before answering");
  }
  const auto& res = parser.get();
  if (!res.keep_alive()) in.stream.reset();
  unsigned status = res.result_int();
  if (status < 200 || status > 299) return StatusFromAnswer(status, res.body());
  if (res.body().empty()) return json(nullptr);
  json answer = json::parse(res.body(), nullptr, /*allow_exceptions=*/false);
  if (answer.is_discarded()) {
    auto type = res[http::field::content_type];
    if (std::string_view(type.data(), type.size()).rfind("application/json", 0) == 0) {
      return Status::IOError("the target at " + in.o.target + " answered with invalid JSON");
    }
    return json(res.body());
  }
  return answer;
}

Result<journal::VolumeInfo> RemoteClient::FindVolume(std::string_view volume) {
  BOOST_OUTCOME_TRY(list, Call("GET", "/v1/volumes"));
  if (list.is_object() && list.contains("volumes") && list["volumes"].is_array()) {
    for (const auto& v : list["volumes"]) {
      if (v.value("name", std::string()) != volume) continue;
      journal::VolumeInfo info;
      info.name = std::string(volume);
      info.size_bytes = v.value("size_bytes", uint64_t{0});
      info.block_bytes = v.value("block_bytes", uint32_t{0});
      if (v.contains("group") && v["group"].is_string()) info.group = v["group"];
      info.import_seq = v.value("group_index", uint64_t{0});
      if (info.size_bytes == 0 || info.block_bytes == 0) break;
      return info;
    }
  }
  return Status::NotFound("volume '" + std::string(volume) + "' not found");
}

Result<journal::GroupInfo> RemoteClient::FindGroup(std::string_view group) {
  BOOST_OUTCOME_TRY(list, Call("GET", "/v1/volumes"));
  journal::GroupInfo g;
  g.name = std::string(group);
  if (list.is_object() && list.contains("volumes") && list["volumes"].is_array()) {
    for (const auto& v : list["volumes"]) {
      if (!v.contains("group") || !v["group"].is_string() || v["group"] != group) continue;
      BOOST_OUTCOME_TRY(info, FindVolume(v.value("name", std::string())));
      g.volumes.push_back(info);
    }
  }
  if (g.volumes.empty()) return Status::NotFound("group '" + std::string(group) + "' not found");
  std::sort(g.volumes.begin(), g.volumes.end(),
            [](const auto& a, const auto& b) { return a.import_seq < b.import_seq; });
  return g;
}

Status RemoteClient::StreamBlocks(const journal::VolumeInfo& volume, Seq seq,
                                  const journal::BlockFn& fn) {
  Impl& in = *impl_;
  auto req =
      in.Request("GET", VolumePath(volume.name, "blocks?seq=" + std::to_string(seq)), nullptr);
  TM_RETURN_IF_ERROR(in.Send(req));
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<uint64_t>::max());
  auto& lowest = beast::get_lowest_layer(*in.stream);
  lowest.expires_after(in.o.step_timeout);
  error_code ec =
      Await(in.ioc, [&](auto h) { http::async_read_header(*in.stream, in.buffer, parser, h); });
  if (ec) {
    in.stream.reset();
    return in.Transport(ec, "before answering");
  }
  const unsigned status = parser.get().result_int();
  auto header = [&](const char* name) {
    auto v = parser.get()[name];
    return std::string(v.data(), v.size());
  };
  if (status == 200 && (header("X-Tidemark-Seq") != std::to_string(seq) ||
                        header("X-Tidemark-Block-Bytes") != std::to_string(volume.block_bytes) ||
                        header("X-Tidemark-Size-Bytes") != std::to_string(volume.size_bytes))) {
    in.stream.reset();
    return Status::Corruption("the target sent blocks of another seq or geometry for volume " +
                              volume.name);
  }
  BlockStreamDecoder decoder(volume.block_bytes, volume.blocks());
  std::string error_text;  // the body of an error answer
  std::vector<char> chunk(kReadChunk);
  Status fed;
  while (!parser.is_done() && fed.ok()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    lowest.expires_after(in.o.step_timeout);
    ec = Await(in.ioc, [&](auto h) { http::async_read_some(*in.stream, in.buffer, parser, h); });
    if (ec == http::error::need_buffer) ec = {};
    if (ec) break;
    std::string_view got(chunk.data(), chunk.size() - parser.get().body().size);
    if (status != 200) {
      if (error_text.size() < kMaxJsonBytes) error_text.append(got);
    } else {
      fed = decoder.Feed(got, fn);
    }
  }
  if (ec || !fed.ok() || !parser.is_done() || !parser.get().keep_alive()) in.stream.reset();
  if (status != 200) {
    if (ec) return in.Transport(ec, "before answering");
    return StatusFromAnswer(status, error_text);
  }
  if (!fed.ok()) return fed;
  if (ec) {
    Status s = decoder.Finish();
    if (!s.ok() && !decoder.ended())
      return Status(s.code(), s.message() + " (" + ec.message() + ")");
    return s;
  }
  return decoder.Finish();
}

Status RemoteClient::ReadBlocks(const journal::VolumeInfo& volume, Seq seq, uint64_t first_block,
                                uint32_t count, char* out, journal::BlockState* states) {
  // Pieces within what the route answers (ApiRoutes::kMaxReadBytes of block
  // bytes, kMaxReadStates states).
  const uint32_t max = out ? static_cast<uint32_t>((16u << 20) / volume.block_bytes) : 1u << 18;
  for (uint32_t done = 0; done < count;) {
    const uint32_t n = std::min(max, count - done);
    TM_RETURN_IF_ERROR(ReadPiece(volume, seq, first_block + done, n,
                                 out ? out + static_cast<size_t>(done) * volume.block_bytes
                                     : nullptr,
                                 states ? states + done : nullptr));
    done += n;
  }
  return Status::Ok();
}

Status RemoteClient::ReadPiece(const journal::VolumeInfo& volume, Seq seq, uint64_t first_block,
                               uint32_t count, char* out, journal::BlockState* states) {
  Impl& in = *impl_;
  std::string what = "read?seq=" + std::to_string(seq) + "&block=" + std::to_string(first_block) +
                     "&count=" + std::to_string(count) + (out ? "" : "&data=0");
  auto req = in.Request("GET", VolumePath(volume.name, what), nullptr);
  TM_RETURN_IF_ERROR(in.Send(req));
  http::response_parser<http::string_body> parser;
  parser.body_limit(uint64_t{count} * (volume.block_bytes + 1) + 4 + kMaxJsonBytes);
  beast::get_lowest_layer(*in.stream).expires_after(in.o.step_timeout);
  error_code ec =
      Await(in.ioc, [&](auto h) { http::async_read(*in.stream, in.buffer, parser, h); });
  if (ec) {
    in.stream.reset();
    return in.Transport(ec, "before answering");
  }
  const auto& res = parser.get();
  if (!res.keep_alive()) in.stream.reset();
  const unsigned status = res.result_int();
  if (status < 200 || status > 299) return StatusFromAnswer(status, res.body());
  Status decoded = DecodeBlockRead(res.body(), volume.block_bytes, count, out, states);
  if (!decoded.ok()) {
    return Status::Corruption("the target's read of " + volume.name + " blocks " +
                              std::to_string(first_block) + "+" + std::to_string(count) +
                              " at seq " + std::to_string(seq) + " " + decoded.message());
  }
  return Status::Ok();
}

}  // namespace tidemark::target
