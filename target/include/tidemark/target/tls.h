// The target's certificates (docs/design.md#security): a private CA and the
// server certificate it signs, created once by `tidemark target init`. Taps
// trust the CA (they get a copy of ca.crt); the server presents server.crt.
//
// Files written by CreateTargetPki into its directory, all PEM:
//   ca.key      the CA's EC P-256 private key (PKCS#8), mode 0600
//   ca.crt      the self-signed CA certificate: basicConstraints CA:TRUE
//               (critical), keyUsage keyCertSign + cRLSign (critical),
//               valid 10 years, mode 0644
//   server.key  the server's EC P-256 private key (PKCS#8), mode 0600
//   server.crt  signed by the CA: subjectAltName with every host (DNS names
//               and IP addresses), extendedKeyUsage serverAuth, keyUsage
//               digitalSignature, basicConstraints CA:FALSE, valid 10 years,
//               mode 0644
// Both certificates carry a random 128-bit serial. Each file is written
// atomically (a temporary file beside it, fsync, link into place, fsync of
// the directory), so a crash leaves either the whole file or none.
//
// OpenSSL stays inside tls.cc; nothing here includes it or Asio. Building
// the server's ssl::context from these files is the server's business.
//
// Thread-safety: free functions without shared state; callable from any
// thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tidemark/journal/status.h"

namespace tidemark::target {

inline constexpr std::string_view kCaKeyFile = "ca.key";
inline constexpr std::string_view kCaCertFile = "ca.crt";
inline constexpr std::string_view kServerKeyFile = "server.key";
inline constexpr std::string_view kServerCertFile = "server.crt";

// The hosts a server certificate names when none are given: "localhost",
// "127.0.0.1", "::1" and this machine's hostname (when it has one that is a
// valid DNS name and not already listed).
std::vector<std::string> DefaultTargetHosts();

// Creates ca.key, ca.crt, server.key and server.crt in `dir` (which must
// exist). `hosts` are the names taps use to reach the server: each is an IP
// address (v4 or v6; "[::1]" is taken as "::1") or a DNS name of letters,
// digits, '-', '.' and '_' (a leading "*." for a wildcard); duplicates are
// dropped; empty means DefaultTargetHosts(). The server certificate's
// subject CN is the first host.
// Errors: kInvalidArgument naming the file when any of the four already
// exists (nothing is written then: existing keys are never replaced), or
// naming a bad host; kIOError / kNoSpace from the file system; kIOError with
// OpenSSL's reason when key or certificate generation fails. A failure after
// some files were written removes the ones this call wrote.
Status CreateTargetPki(const std::string& dir, const std::vector<std::string>& hosts);

// The SHA-256 fingerprint of the PEM certificate at `path`, as
// `openssl x509 -noout -fingerprint -sha256` prints it: upper-case hex bytes
// separated by ':' (95 characters), for people to compare.
// kNotFound / kIOError when the file cannot be read, kInvalidArgument naming
// the path when it holds no PEM certificate.
Result<std::string> CertificateFingerprint(const std::string& path);

// Checks that the PEM certificate at `cert_path` chains to the CA at
// `ca_path` (X509_verify_cert, purpose TLS server) and names `host` (an IP
// address or a DNS name, matched as a TLS client would). Ok when both hold;
// kInvalidArgument with the reason otherwise; kNotFound / kIOError when a
// file cannot be read. Used by tests and diagnostics, not on the data path.
Status VerifyServerCertificate(const std::string& ca_path, const std::string& cert_path,
                               const std::string& host);

}  // namespace tidemark::target
