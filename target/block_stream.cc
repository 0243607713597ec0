#include "block_stream.h"

#include <nlohmann/json.hpp>

#include "tidemark/journal/crc32c.h"

namespace tidemark::target {

namespace {

// An error end's JSON is a few hundred bytes; anything near this is damage.
constexpr uint32_t kMaxErrorBytes = 64 << 10;

void PutBE(std::string* s, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetBE(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// The Status an error end carries; kCorruption when it is not the
// contract's error body.
Status StatusFromErrorBody(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("error") || !j["error"].is_object() ||
      !j["error"].contains("message") || !j["error"]["message"].is_string()) {
    return Status::Corruption("block stream: its error end is not an error object");
  }
  const nlohmann::json& e = j["error"];
  Code code = Code::kIOError;
  if (e.contains("code") && e["code"].is_string()) {
    for (Code c : {Code::kNotFound, Code::kCorruption, Code::kIOError, Code::kInvalidArgument,
                   Code::kNotSupported, Code::kNoSpace, Code::kTryAgain, Code::kAborted}) {
      if (Status::CodeId(c) == e["code"].get_ref<const std::string&>()) code = c;
    }
  }
  return Status(code, "the target failed: " + e["message"].get<std::string>());
}

}  // namespace

void BlockStreamEncoder::AppendBlock(std::string* out, uint64_t block, std::string_view data) {
  TM_CHECK(data.size() == block_bytes_);
  TM_CHECK(block < kBlockStreamError && (count_ == 0 || block > last_));
  size_t at = out->size();
  PutBE(out, block, 8);
  out->append(data);
  crc_ = Crc32cExtend(crc_, out->data() + at, out->size() - at);
  last_ = block;
  ++count_;
}

void BlockStreamEncoder::AppendEnd(std::string* out) {
  size_t at = out->size();
  PutBE(out, kBlockStreamEnd, 8);
  PutBE(out, count_, 8);
  uint32_t crc = Crc32cExtend(crc_, out->data() + at, out->size() - at);
  PutBE(out, crc, 4);
}

void BlockStreamEncoder::AppendError(std::string* out, const Status& s) {
  TM_CHECK(!s.ok());
  nlohmann::json body = {{"error", {{"code", Status::CodeId(s.code())}, {"message", s.message()}}}};
  std::string text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > kMaxErrorBytes / 2) {
    text = nlohmann::json{{"error",
                           {{"code", Status::CodeId(s.code())},
                            {"message", s.message().substr(0, 1024)}}}}
               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  PutBE(out, kBlockStreamError, 8);
  PutBE(out, text.size(), 4);
  out->append(text);
}

Status BlockStreamDecoder::Fail(Status s) {
  failed_ = s;
  buf_.clear();
  return s;
}

Status BlockStreamDecoder::Feed(std::string_view bytes, const journal::BlockFn& fn) {
  if (!failed_.ok()) return failed_;
  if (ended_) {
    return bytes.empty() ? Status::Ok()
                         : Fail(Status::Corruption("block stream: bytes after its end"));
  }
  buf_.append(bytes);
  size_t pos = 0;
  const size_t record = 8 + size_t{block_bytes_};
  for (;;) {
    const char* p = buf_.data() + pos;
    size_t left = buf_.size() - pos;
    if (left < 8) break;
    uint64_t block = GetBE(p, 8);
    if (block == kBlockStreamEnd) {
      if (left < kBlockStreamEndBytes) break;
      uint64_t count = GetBE(p + 8, 8);
      uint32_t crc = static_cast<uint32_t>(GetBE(p + 16, 4));
      if (count != count_) {
        return Fail(Status::Corruption("block stream: its end counts " + std::to_string(count) +
                                       " blocks, " + std::to_string(count_) + " arrived"));
      }
      if (crc != Crc32cExtend(crc_, p, 16)) {
        return Fail(Status::Corruption("block stream: CRC32C mismatch over " +
                                       std::to_string(count_) + " blocks"));
      }
      ended_ = true;
      if (left != kBlockStreamEndBytes) {
        return Fail(Status::Corruption("block stream: bytes after its end"));
      }
      buf_.clear();
      return Status::Ok();
    }
    if (block == kBlockStreamError) {
      if (left < 12) break;
      uint32_t len = static_cast<uint32_t>(GetBE(p + 8, 4));
      if (len > kMaxErrorBytes) {
        return Fail(
            Status::Corruption("block stream: an error end of " + std::to_string(len) + " bytes"));
      }
      if (left < 12 + size_t{len}) break;
      ended_ = true;
      return Fail(StatusFromErrorBody(std::string_view(p + 12, len)));
    }
    if (block >= blocks_ || block < next_) {
      return Fail(Status::Corruption(
          "block stream: block " + std::to_string(block) +
          (block >= blocks_ ? " is beyond the volume's " + std::to_string(blocks_) + " blocks"
                            : " is out of order (after block " + std::to_string(next_ - 1) + ")")));
    }
    if (left < record) break;
    crc_ = Crc32cExtend(crc_, p, record);
    Status s = fn(block, std::string_view(p + 8, block_bytes_));
    pos += record;
    ++count_;
    next_ = block + 1;
    if (!s.ok()) return Fail(s);
  }
  buf_.erase(0, pos);
  return Status::Ok();
}

Status BlockStreamDecoder::Finish() const {
  if (!failed_.ok()) return failed_;
  if (ended_) return Status::Ok();
  return Status::Corruption("block stream truncated after " + std::to_string(count_) +
                            " blocks: the connection ended before the stream's end");
}

}  // namespace tidemark::target
