// Restore: materialise one point of a volume as a disk image.
//
// The raw image is written sparse: only blocks that are not all zeros at the
// point are written (through capture's io_uring ParallelWriter, many blocks in
// flight), the rest are holes. It is written to a temporary file beside the
// output and renamed into place when complete, so a failed restore leaves no
// partial image and an existing output is replaced only by a whole one.
// qcow2, vmdk and vhdx come from `qemu-img convert` of that raw image.
//
// Thread-safety: Restore() reads the journal from the calling thread and, for
// a parallel scan (RestoreOptions::scan_threads), from threads of its own that
// end before it returns; progress is called on the calling thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "tidemark/journal/journal.h"
#include "tidemark/journal/status.h"

namespace tidemark::recovery {

enum class ImageFormat { kRaw, kQcow2, kVmdk, kVhdx };
std::string_view ImageFormatName(ImageFormat f);
// "raw", "qcow2", "vmdk", "vhdx"; kInvalidArgument otherwise.
Result<ImageFormat> ParseImageFormat(std::string_view name);

struct RestoreOptions {
  std::string output_path;
  ImageFormat format = ImageFormat::kRaw;
  // Replace an existing output. Without it an existing output is
  // kInvalidArgument (a sparse write over old data would leave stale bytes).
  bool force = false;
  unsigned queue_depth = 32;
  // Restore() from a local journal: scan this many block ranges at once, each
  // on its own thread with its own iterator and writer. 0: one per CPU, at
  // most 4. Volumes under 64 MiB are scanned by one thread.
  unsigned scan_threads = 0;
  // Write the image with O_DIRECT where the file system takes it and the
  // volume's block size is a multiple of its block size (see restore.cc);
  // otherwise, or when false, through the page cache.
  bool direct_io = true;
  // Called now and then with bytes of the volume scanned so far and the total.
  std::function<void(uint64_t done_bytes, uint64_t total_bytes)> progress;
};

struct RestoreStats {
  uint64_t volume_bytes = 0;  // size of the image
  uint64_t data_bytes = 0;    // bytes written (blocks not all zeros)
  uint64_t blocks = 0;        // blocks written
  double seconds = 0;
  bool io_uring = false;      // false: the synchronous fallback was used
  bool direct_io = false;     // written with O_DIRECT (RestoreOptions::direct_io)
};

// Writes volume `volume` of `journal` as it was at `seq` to options.output_path.
// Errors: kInvalidArgument (existing output without force, output is a
// directory), kIOError / kNoSpace (writing), kCorruption (a damaged block:
// nothing is left at the output), kNotFound (qemu-img missing for a
// non-raw format).
Result<RestoreStats> Restore(const journal::Journal& journal, uint32_t volume, Seq seq,
                             const RestoreOptions& options);

// The blocks of one point: calls `fn`, in block order, for every block that
// is not all zeros (block_bytes long; the last one full-size too), and
// returns fn's first error or its own.
using BlockSource = std::function<Status(const journal::BlockFn& fn)>;

// Restore() with the blocks taken from `source` instead of a journal (a
// remote target's block stream); `volume` gives the size and block size.
// Same output handling and errors as Restore(), plus the source's: when it
// fails (a truncated stream), nothing is left at the output.
Result<RestoreStats> RestoreBlocks(const journal::VolumeInfo& volume, const BlockSource& source,
                                   const RestoreOptions& options);

}  // namespace tidemark::recovery
