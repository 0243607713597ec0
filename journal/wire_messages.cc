// The JSON payloads of docs/protocol.md (HELLO, WELCOME, BOOKMARK,
// BOOKMARK_DONE, ERROR, IMPORT_DONE, UNORDERED). nlohmann-json stays in this
// file: its exceptions are caught here and never cross wire.h.
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "tidemark/journal/wire.h"

namespace tidemark::wire {

using json = nlohmann::json;

namespace {

// nlohmann's objects are std::maps, so dump() sorts keys: the same message
// always encodes to the same bytes (the golden test relies on it). Invalid
// UTF-8 would make dump() throw; it is replaced instead.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Reads typed fields of one JSON object, remembering the first problem.
class Fields {
 public:
  Fields(const json& obj, std::string what) : obj_(obj), what_(std::move(what)) {}

  std::string Str(const char* key) {
    const json* v = Find(key);
    if (v == nullptr) return {};
    if (!v->is_string()) return Fail(key, "is not a string"), std::string();
    return v->get<std::string>();
  }
  uint64_t Unsigned(const char* key, uint64_t max = std::numeric_limits<uint64_t>::max()) {
    const json* v = Find(key);
    if (v == nullptr) return 0;
    if (!v->is_number_unsigned()) return Fail(key, "is not an unsigned integer"), 0;
    uint64_t n = v->get<uint64_t>();
    if (n > max) return Fail(key, "is out of range"), 0;
    return n;
  }
  int64_t Signed(const char* key) {
    const json* v = Find(key);
    if (v == nullptr) return 0;
    if (v->is_number_unsigned()) {
      if (v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Fail(key, "is out of range"), 0;
      }
      return static_cast<int64_t>(v->get<uint64_t>());
    }
    if (!v->is_number_integer()) return Fail(key, "is not an integer"), 0;
    return v->get<int64_t>();
  }
  bool Bool(const char* key) {
    const json* v = Find(key);
    if (v == nullptr) return false;
    if (!v->is_boolean()) return Fail(key, "is not a boolean"), false;
    return v->get<bool>();
  }
  // A seq or null (kNoSeq); kNoSeq itself is not a valid number here.
  Seq SeqOrNull(const char* key) {
    const json* v = Find(key);
    if (v == nullptr || v->is_null()) return kNoSeq;
    return Unsigned(key, kNoSeq - 1);
  }
  // A field that may be absent (no failure then); nullptr when it is.
  const json* Optional(const char* key) const {
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }
  // The elements of an array of objects; empty (and a failure) otherwise.
  std::vector<const json*> Objects(const char* key) {
    std::vector<const json*> out;
    const json* v = Find(key);
    if (v == nullptr) return out;
    if (!v->is_array()) return Fail(key, "is not an array"), out;
    for (const json& e : *v) {
      if (!e.is_object()) return Fail(key, "holds a non-object"), std::vector<const json*>();
      out.push_back(&e);
    }
    return out;
  }

  bool ok() const { return error_.empty(); }
  Status status() const { return ok() ? Status::Ok() : Status::Corruption(what_ + ": " + error_); }
  // Adopts the first problem of the reader of element `index` of array `key`.
  void Merge(const Fields& inner, const char* key, size_t index) {
    if (ok() && !inner.ok()) {
      error_ = std::string(key) + "[" + std::to_string(index) + "]: " + inner.error_;
    }
  }

 private:
  const json* Find(const char* key) {
    auto it = obj_.find(key);
    if (it == obj_.end()) {
      Fail(key, "is missing");
      return nullptr;
    }
    return &*it;
  }
  void Fail(const char* key, const char* why) {
    if (error_.empty()) error_ = "field '" + std::string(key) + "' " + why;
  }

  const json& obj_;
  std::string what_;
  std::string error_;
};

// Parses a payload that must be one JSON object, then runs read(Fields&).
template <class T, class ReadFn>
Result<T> Parse(std::string_view payload, const char* what, ReadFn read) {
  try {
    json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Status::Corruption(std::string(what) + ": invalid JSON");
    if (!j.is_object()) return Status::Corruption(std::string(what) + ": not a JSON object");
    Fields f(j, what);
    T m = read(f);
    TM_RETURN_IF_ERROR(f.status());
    return m;
  } catch (const json::exception& e) {
    return Status::Corruption(std::string(what) + ": " + e.what());
  }
}

}  // namespace

std::string EncodeHello(const Hello& m) {
  json vols = json::array();
  for (const VolumeSpec& v : m.volumes) {
    vols.push_back(
        {{"name", v.name}, {"size_bytes", v.size_bytes}, {"block_bytes", v.block_bytes}});
  }
  return Dump({{"protocol", m.protocol},
               {"tenant", m.tenant},
               {"token", m.token},
               {"group", m.group},
               {"tap_id", m.tap_id},
               {"volumes", vols}});
}

Result<Hello> DecodeHello(std::string_view payload) {
  return Parse<Hello>(payload, "HELLO", [](Fields& f) {
    Hello m;
    m.protocol = static_cast<uint32_t>(f.Unsigned("protocol", UINT32_MAX));
    m.tenant = f.Str("tenant");
    m.token = f.Str("token");
    m.group = f.Str("group");
    m.tap_id = f.Str("tap_id");
    for (const json* e : f.Objects("volumes")) {
      Fields v(*e, "");
      VolumeSpec spec;
      spec.name = v.Str("name");
      spec.size_bytes = v.Unsigned("size_bytes");
      spec.block_bytes = static_cast<uint32_t>(v.Unsigned("block_bytes", UINT32_MAX));
      f.Merge(v, "volumes", m.volumes.size());
      m.volumes.push_back(std::move(spec));
    }
    return m;
  });
}

std::string EncodeWelcome(const Welcome& m) {
  json vols = json::array();
  for (const VolumeState& v : m.volumes) {
    vols.push_back(
        {{"name", v.name}, {"state", v.state}, {"import_next_offset", v.import_next_offset}});
  }
  json durable = m.durable_seq == kNoSeq ? json(nullptr) : json(m.durable_seq);
  json out = {{"protocol", m.protocol}, {"durable_seq", durable}, {"volumes", vols}};
  if (!m.features.empty()) out["features"] = m.features;
  return Dump(out);
}

Result<Welcome> DecodeWelcome(std::string_view payload) {
  return Parse<Welcome>(payload, "WELCOME", [](Fields& f) {
    Welcome m;
    m.protocol = static_cast<uint32_t>(f.Unsigned("protocol", UINT32_MAX));
    m.durable_seq = f.SeqOrNull("durable_seq");
    for (const json* e : f.Objects("volumes")) {
      Fields v(*e, "");
      VolumeState st;
      st.name = v.Str("name");
      st.state = v.Str("state");
      st.import_next_offset = v.Unsigned("import_next_offset");
      f.Merge(v, "volumes", m.volumes.size());
      m.volumes.push_back(std::move(st));
    }
    // Optional: unknown features are ignored by the tap.
    if (const json* feats = f.Optional("features"); feats && feats->is_array()) {
      for (const json& x : *feats) {
        if (x.is_string()) m.features.push_back(x.get<std::string>());
      }
    }
    return m;
  });
}

namespace {

json PointJson(const std::string& name, Seq seq, TimeNs time_ns) {
  return {{"name", name}, {"seq", seq}, {"time_ns", time_ns}};
}

}  // namespace

std::string EncodeBookmark(const Bookmark& m) { return Dump(PointJson(m.name, m.seq, m.time_ns)); }

Result<Bookmark> DecodeBookmark(std::string_view payload) {
  return Parse<Bookmark>(payload, "BOOKMARK", [](Fields& f) {
    return Bookmark{f.Str("name"), f.Unsigned("seq"), f.Signed("time_ns")};
  });
}

std::string EncodeBookmarkDone(const BookmarkDone& m) {
  return Dump(PointJson(m.name, m.seq, m.time_ns));
}

Result<BookmarkDone> DecodeBookmarkDone(std::string_view payload) {
  return Parse<BookmarkDone>(payload, "BOOKMARK_DONE", [](Fields& f) {
    return BookmarkDone{f.Str("name"), f.Unsigned("seq"), f.Signed("time_ns")};
  });
}

std::string EncodeError(const Error& m) { return Dump({{"code", m.code}, {"message", m.message}}); }

Result<Error> DecodeError(std::string_view payload) {
  return Parse<Error>(payload, "ERROR", [](Fields& f) {
    return Error{f.Str("code"), f.Str("message")};
  });
}

std::string EncodeImportDone(const ImportDone& m) {
  return Dump({{"volume", m.volume}, {"time_ns", m.time_ns}});
}

Result<ImportDone> DecodeImportDone(std::string_view payload) {
  return Parse<ImportDone>(payload, "IMPORT_DONE", [](Fields& f) {
    return ImportDone{static_cast<uint16_t>(f.Unsigned("volume", UINT16_MAX)), f.Signed("time_ns")};
  });
}

std::string EncodeUnordered(const Unordered& m) {
  return Dump({{"begin", m.begin}, {"seq", m.seq}, {"time_ns", m.time_ns}});
}

Result<Unordered> DecodeUnordered(std::string_view payload) {
  return Parse<Unordered>(payload, "UNORDERED", [](Fields& f) {
    return Unordered{f.Bool("begin"), f.Unsigned("seq"), f.Signed("time_ns")};
  });
}

}  // namespace tidemark::wire
