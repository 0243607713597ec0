#include "tidemark/journal/types.h"

#include <algorithm>

namespace tidemark {

void CoalesceExtents(std::vector<Extent>* extents) {
  auto& v = *extents;
  std::erase_if(v, [](const Extent& e) { return e.length_bytes == 0; });
  std::sort(v.begin(), v.end(), [](const Extent& a, const Extent& b) {
    return a.offset_bytes < b.offset_bytes;
  });
  size_t out = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (out > 0 && v[i].offset_bytes <= v[out - 1].end_bytes()) {
      uint64_t end = std::max(v[out - 1].end_bytes(), v[i].end_bytes());
      v[out - 1].length_bytes = end - v[out - 1].offset_bytes;
    } else {
      v[out++] = v[i];
    }
  }
  v.resize(out);
}

}  // namespace tidemark
