#include "tidemark/journal/trace.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "coding.h"

namespace tidemark {

Result<std::vector<TraceRequest>> ReadTrace(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot open trace " + path);
  std::vector<TraceRequest> out;
  std::string line;
  for (uint64_t n = 0; std::getline(in, line); ++n) {
    if (line.empty()) {
      return Status::InvalidArgument("trace " + path + " line " + std::to_string(n + 1) +
                                     ": empty line");
    }
    std::istringstream ls(line);
    TraceRequest r;
    int type = -1;
    ls >> r.time_ns >> r.device >> r.lba >> r.sectors >> type;
    std::string rest;
    if (ls.fail() || (ls >> rest) || (type != 0 && type != 1) || r.sectors == 0) {
      return Status::InvalidArgument("trace " + path + " line " + std::to_string(n + 1) +
                                     ": want 'time_ns device lba sectors type(0|1)'");
    }
    r.line = n;
    r.write = type == 0;
    out.push_back(r);
  }
  return out;
}

FoldedExtent FoldRequest(const TraceRequest& r, uint64_t volume_bytes, uint64_t align) {
  uint64_t offset = (r.lba * 512) % volume_bytes;
  uint64_t length = r.sectors * 512;
  if (align > 1) {
    offset = offset / align * align;
    length = (length + align - 1) / align * align;
  }
  length = std::min(length, volume_bytes);
  if (offset + length > volume_bytes) offset = (volume_bytes - length) / 512 * 512;
  return {offset, length};
}

std::string TracePayload(uint64_t line, uint64_t length_bytes) {
  std::string out;
  out.reserve(length_bytes);
  for (uint64_t k = 0; k * 512 < length_bytes; ++k) {
    std::string word;
    journal::coding::PutLE(&word, line * 65536 + k, 8);
    for (int i = 0; i < 64; ++i) out += word;
  }
  out.resize(length_bytes);
  return out;
}

}  // namespace tidemark
