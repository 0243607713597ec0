#include "tidemark/journal/crc32c.h"

#include <isa-l/crc.h>

namespace tidemark {

// ISA-L's crc32_iscsi takes and returns the raw (un-inverted) register; the
// standard CRC32C inverts on entry and exit.
uint32_t Crc32cExtend(uint32_t crc, const void* p, size_t n) {
  return ~crc32_iscsi(static_cast<unsigned char*>(const_cast<void*>(p)),
                      static_cast<int>(n), ~crc);
}

uint32_t Crc32c(const void* p, size_t n) { return Crc32cExtend(0, p, n); }

}  // namespace tidemark
