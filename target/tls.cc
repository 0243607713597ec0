#include "tidemark/target/tls.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <memory>

#include "tidemark/target/config.h"

namespace tidemark::target {

namespace {

template <auto F>
struct Free {
  template <class T>
  void operator()(T* p) const {
    F(p);
  }
};
using PKey = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Free<X509_free>>;
using Bio = std::unique_ptr<BIO, Free<BIO_free_all>>;
using Bignum = std::unique_ptr<BIGNUM, Free<BN_free>>;
using Names = std::unique_ptr<GENERAL_NAMES, Free<GENERAL_NAMES_free>>;
using Store = std::unique_ptr<X509_STORE, Free<X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Free<X509_STORE_CTX_free>>;

// Ten years, counting the leap days in any ten.
constexpr int kValidDays = 3653;
// notBefore is an hour back, so that a tap whose clock lags a little still
// accepts a certificate made a moment ago.
constexpr long kBackdateSeconds = 3600;

Status OpenSslError(const std::string& what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown OpenSSL error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return Status::IOError(what + ": " + buf);
}

bool IsIp(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// A DNS name as a certificate may carry one: labels of letters, digits, '-'
// and '_' (seen in internal names), optionally "*." first.
bool IsDnsName(std::string_view h) {
  if (h.rfind("*.", 0) == 0) h.remove_prefix(2);
  if (h.empty() || h.size() > 253 || h.front() == '.' || h.back() == '.') return false;
  char prev = 0;
  for (char c : h) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok || (c == '.' && prev == '.')) return false;
    prev = c;
  }
  return true;
}

std::string Unbracket(const std::string& host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    return host.substr(1, host.size() - 2);
  }
  return host;
}

Result<std::string> BioString(BIO* b) {
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  if (n < 0 || (n > 0 && p == nullptr)) return OpenSslError("read memory BIO");
  return std::string(p, size_t(n));
}

Result<std::string> KeyPem(EVP_PKEY* key) {
  Bio b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_PrivateKey(b.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("encode private key");
  }
  return BioString(b.get());
}

Result<std::string> CertPem(X509* cert) {
  Bio b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_X509(b.get(), cert) != 1) return OpenSslError("encode certificate");
  return BioString(b.get());
}

Result<PKey> NewKey() {
  PKey k(EVP_EC_gen("P-256"));
  if (!k) return OpenSslError("generate EC P-256 key");
  return k;
}

Status AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext) return OpenSslError(std::string("certificate extension ") + OBJ_nid2sn(nid));
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) return OpenSslError(std::string("add extension ") + OBJ_nid2sn(nid));
  return Status::Ok();
}

Status AddSubjectAltNames(X509* cert, const std::vector<std::string>& hosts) {
  Names names(sk_GENERAL_NAME_new_null());
  if (!names) return OpenSslError("subjectAltName");
  for (const std::string& h : hosts) {
    GENERAL_NAME* g = GENERAL_NAME_new();
    if (!g || sk_GENERAL_NAME_push(names.get(), g) <= 0) {
      GENERAL_NAME_free(g);
      return OpenSslError("subjectAltName");
    }
    if (IsIp(h)) {
      ASN1_OCTET_STRING* ip = a2i_IPADDRESS(h.c_str());
      if (!ip) return OpenSslError("subjectAltName IP " + h);
      GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
    } else {
      ASN1_IA5STRING* dns = ASN1_IA5STRING_new();
      if (!dns || ASN1_STRING_set(dns, h.data(), int(h.size())) != 1) {
        ASN1_IA5STRING_free(dns);
        return OpenSslError("subjectAltName DNS " + h);
      }
      GENERAL_NAME_set0_value(g, GEN_DNS, dns);
    }
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return OpenSslError("add subjectAltName");
  }
  return Status::Ok();
}

// A certificate for `key` named `cn`, signed by issuer_key; a null issuer
// makes it self-signed. `extensions` are (nid, openssl config value) pairs.
Result<Cert> NewCert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                     const std::vector<std::pair<int, const char*>>& extensions,
                     const std::vector<std::string>& alt_names) {
  Cert x(X509_new());
  if (!x || X509_set_version(x.get(), X509_VERSION_3) != 1) return OpenSslError("new certificate");
  // 16 random bytes, top bit clear (DER integers are signed) and next bit set
  // (so the serial is never short or zero): 128 bits wide, 126 of them random.
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return OpenSslError("random serial");
  serial[0] = (serial[0] & 0x7f) | 0x40;
  Bignum bn(BN_bin2bn(serial, sizeof serial, nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x.get()))) {
    return OpenSslError("set serial");
  }
  if (!X509_gmtime_adj(X509_getm_notBefore(x.get()), -kBackdateSeconds) ||
      !X509_time_adj_ex(X509_getm_notAfter(x.get()), kValidDays, 0, nullptr)) {
    return OpenSslError("set validity");
  }
  X509_NAME* name = X509_get_subject_name(x.get());
  auto text = [](const std::string& s) {
    return reinterpret_cast<const unsigned char*>(s.c_str());
  };
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, text("tidemark"), -1, -1, 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, text(cn), -1, -1, 0) != 1 ||
      X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer) : name) != 1 ||
      X509_set_pubkey(x.get(), key) != 1) {
    return OpenSslError("set certificate names");
  }
  for (const auto& [nid, value] : extensions) {
    TM_RETURN_IF_ERROR(AddExtension(x.get(), issuer ? issuer : x.get(), nid, value));
  }
  if (!alt_names.empty()) TM_RETURN_IF_ERROR(AddSubjectAltNames(x.get(), alt_names));
  if (X509_sign(x.get(), issuer_key, EVP_sha256()) <= 0) return OpenSslError("sign certificate");
  return x;
}

Result<Cert> ReadCert(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound("certificate " + path + " does not exist");
    return Status::FromErrno(errno, "stat " + path);
  }
  Bio b(BIO_new_file(path.c_str(), "r"));
  if (!b) return OpenSslError("open " + path);
  Cert x(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!x) return Status::InvalidArgument(path + " holds no PEM certificate");
  return x;
}

}  // namespace

std::vector<std::string> DefaultTargetHosts() {
  std::vector<std::string> hosts = {"localhost", "127.0.0.1", "::1"};
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof name - 1) == 0 && IsDnsName(name) &&
      std::find(hosts.begin(), hosts.end(), name) == hosts.end()) {
    hosts.emplace_back(name);
  }
  return hosts;
}

Status CreateTargetPki(const std::string& dir, const std::vector<std::string>& given_hosts) {
  std::vector<std::string> hosts;
  for (const std::string& g : given_hosts.empty() ? DefaultTargetHosts() : given_hosts) {
    std::string h = Unbracket(g);
    if (!IsIp(h) && !IsDnsName(h)) {
      return Status::InvalidArgument("bad host '" + g + "': give a DNS name or an IP address");
    }
    if (std::find(hosts.begin(), hosts.end(), h) == hosts.end()) hosts.push_back(h);
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::NotFound("directory " + dir + " does not exist");
  }
  const std::string files[4] = {
      dir + "/" + std::string(kCaKeyFile), dir + "/" + std::string(kCaCertFile),
      dir + "/" + std::string(kServerKeyFile), dir + "/" + std::string(kServerCertFile)};
  for (const std::string& f : files) {
    if (::lstat(f.c_str(), &st) == 0) {
      return Status::InvalidArgument(f + " already exists; existing keys are never replaced");
    }
  }
  BOOST_OUTCOME_TRY(ca_key, NewKey());
  BOOST_OUTCOME_TRY(ca, NewCert("tidemark target CA", ca_key.get(), nullptr, ca_key.get(),
                                {{NID_basic_constraints, "critical,CA:TRUE"},
                                 {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                 {NID_subject_key_identifier, "hash"},
                                 {NID_authority_key_identifier, "keyid:always"}},
                                {}));
  BOOST_OUTCOME_TRY(server_key, NewKey());
  BOOST_OUTCOME_TRY(server, NewCert(hosts.front(), server_key.get(), ca.get(), ca_key.get(),
                                    {{NID_basic_constraints, "critical,CA:FALSE"},
                                     {NID_key_usage, "critical,digitalSignature"},
                                     {NID_ext_key_usage, "serverAuth"},
                                     {NID_subject_key_identifier, "hash"},
                                     {NID_authority_key_identifier, "keyid:always"}},
                                    hosts));
  BOOST_OUTCOME_TRY(ca_key_pem, KeyPem(ca_key.get()));
  BOOST_OUTCOME_TRY(ca_pem, CertPem(ca.get()));
  BOOST_OUTCOME_TRY(server_key_pem, KeyPem(server_key.get()));
  BOOST_OUTCOME_TRY(server_pem, CertPem(server.get()));
  const std::pair<const std::string*, unsigned> contents[4] = {
      {&ca_key_pem, 0600}, {&ca_pem, 0644}, {&server_key_pem, 0600}, {&server_pem, 0644}};
  for (int i = 0; i < 4; ++i) {
    Status s = WriteFileAtomically(files[i], *contents[i].first, contents[i].second,
                                   /*replace=*/false);
    if (!s.ok()) {
      // Leave no half set: a later init would refuse the leftovers.
      for (int j = 0; j < i; ++j) ::unlink(files[j].c_str());
      return s;
    }
  }
  return Status::Ok();
}

Result<std::string> CertificateFingerprint(const std::string& path) {
  BOOST_OUTCOME_TRY(x, ReadCert(path));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(x.get(), EVP_sha256(), md, &n) != 1) return OpenSslError("digest " + path);
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    if (i) out += ':';
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

Status VerifyServerCertificate(const std::string& ca_path, const std::string& cert_path,
                               const std::string& host) {
  BOOST_OUTCOME_TRY(ca, ReadCert(ca_path));
  BOOST_OUTCOME_TRY(cert, ReadCert(cert_path));
  Store store(X509_STORE_new());
  StoreCtx ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca.get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1 ||
      X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER) != 1) {
    return OpenSslError("set up certificate verification");
  }
  // Strict RFC 5280 checks, so that what we generate also passes pickier peers.
  X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_X509_STRICT);
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return Status::InvalidArgument(cert_path + " does not verify against " + ca_path + ": " +
                                   X509_verify_cert_error_string(err));
  }
  std::string h = Unbracket(host);
  int match = IsIp(h) ? X509_check_ip_asc(cert.get(), h.c_str(), 0)
                      : X509_check_host(cert.get(), h.data(), h.size(), 0, nullptr);
  ERR_clear_error();
  if (match != 1) return Status::InvalidArgument(cert_path + " is not valid for host " + host);
  return Status::Ok();
}

}  // namespace tidemark::target
