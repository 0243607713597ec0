// ALPN dispatch on the target's one TLS port: which protocol a client's
// ClientHello asks for, read before the handshake.
//
// The tap stream's Session does its own TLS handshake on the socket it is
// given, so the choice between it and the HTTP API must be made before any
// byte is consumed. OpenSSL parses the peeked ClientHello (a throwaway SSL
// object fed from a memory BIO, stopped by the client-hello callback before
// anything is negotiated): no hand-written TLS parser, and a ClientHello
// split across several TCP segments or TLS records is handled like any
// other.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cerrno>

#include "remote_api.h"

#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // Asio coroutines, g++ 12

namespace tidemark::target {

namespace {

// TLS allows a ClientHello of up to 2^24 bytes; real ones are well under
// this (a few hundred bytes; some kilobytes with post-quantum key shares).
constexpr size_t kMaxPeekBytes = 64 << 10;

struct Sniffed {
  bool seen = false;  // the callback ran: the whole ClientHello was parsed
  std::string chosen;
};

int OnClientHello(SSL* ssl, int* alert, void*) {
  auto* out = static_cast<Sniffed*>(SSL_get_app_data(ssl));
  out->seen = true;
  const unsigned char* ext = nullptr;
  size_t len = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext,
                                &len) == 1 &&
      len >= 2) {
    size_t list = (size_t{ext[0]} << 8) | ext[1];
    if (list <= len - 2) {
      out->chosen = std::string(ChooseAlpn(ext + 2, static_cast<unsigned>(list)));
    }
  }
  *alert = SSL_AD_HANDSHAKE_FAILURE;
  return SSL_CLIENT_HELLO_ERROR;  // stop: this SSL object only looks
}

SSL_CTX* SniffContext() {
  static SSL_CTX* ctx = [] {
    SSL_CTX* c = SSL_CTX_new(TLS_server_method());
    TM_CHECK(c != nullptr);
    SSL_CTX_set_client_hello_cb(c, OnClientHello, nullptr);
    return c;
  }();
  return ctx;
}

// Parses `bytes` as the start of a TLS connection. Returns true when done
// (*out says what was found), false when more bytes are needed.
bool Sniff(std::string_view bytes, Sniffed* out) {
  SSL* ssl = SSL_new(SniffContext());
  if (!ssl) return true;
  BIO* in = BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size()));
  BIO* sink = BIO_new(BIO_s_mem());
  if (!in || !sink) {
    BIO_free(in);
    BIO_free(sink);
    SSL_free(ssl);
    return true;
  }
  BIO_set_mem_eof_return(in, -1);  // the end of what we have: "want read", not EOF
  SSL_set_bio(ssl, in, sink);      // ssl owns both now
  SSL_set_app_data(ssl, out);
  SSL_set_accept_state(ssl);
  int rc = SSL_do_handshake(ssl);
  bool more = !out->seen && rc <= 0 && SSL_get_error(ssl, rc) == SSL_ERROR_WANT_READ;
  SSL_free(ssl);
  ERR_clear_error();  // the stopped handshake queued errors on this thread
  return !more;
}

}  // namespace

std::string_view ChooseAlpn(const unsigned char* list, unsigned list_bytes) {
  for (unsigned i = 0; i < list_bytes;) {
    unsigned len = list[i];
    if (len == 0 || i + 1 + len > list_bytes) break;
    std::string_view proto(reinterpret_cast<const char*>(list + i + 1), len);
    if (proto == wire::kAlpn) return wire::kAlpn;
    if (proto == kHttpAlpn) return kHttpAlpn;
    i += 1 + len;
  }
  return {};
}

asio::awaitable<std::string> PeekAlpn(const std::shared_ptr<tcp::socket>& socket,
                                      std::chrono::milliseconds timeout) {
  std::shared_ptr<tcp::socket> sock = socket;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // The timer cancels a wait that would outlast the deadline.
  asio::steady_timer guard(sock->get_executor(), timeout);
  std::weak_ptr<tcp::socket> weak = sock;
  guard.async_wait([weak](boost::system::error_code ec) {
    if (auto s = weak.lock(); s && !ec) s->cancel(ec);
  });
  std::vector<char> buf(kMaxPeekBytes);
  size_t have = 0;
  Sniffed result;
  boost::system::error_code ec;
  while (std::chrono::steady_clock::now() < deadline) {
    co_await sock->async_wait(tcp::socket::wait_read,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    ssize_t n = ::recv(sock->native_handle(), buf.data(), buf.size(), MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      break;  // closed or failed: the Session's handshake reports it
    }
    if (n > 0 && static_cast<size_t>(n) > have) {
      have = static_cast<size_t>(n);
      if (Sniff(std::string_view(buf.data(), have), &result)) break;
      if (have == buf.size()) break;  // not a ClientHello we take
      continue;
    }
    // Still the same bytes (the rest of the ClientHello has not arrived):
    // readiness stays set while they are unread, so wait a little instead.
    asio::steady_timer pause(sock->get_executor(), std::chrono::milliseconds(5));
    co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  guard.cancel();
  co_return result.chosen;
}

}  // namespace tidemark::target
