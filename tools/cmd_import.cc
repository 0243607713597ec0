// tidemark journal import --journal DIR --name NAME IMAGE
// tidemark journal replay --journal DIR --name NAME --trace FILE [--align N] [--size BYTES]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "cli.h"
#include "import_replay.h"
#include "tidemark/journal/time.h"
#include "tidemark/journal/trace.h"

namespace tidemark::tools {

namespace {

Result<journal::VolumeInfo> FindOrCreate(journal::Journal& j, const std::string& name,
                                         uint64_t size_bytes, uint32_t block_bytes,
                                         bool block_given) {
  auto vol = j.FindVolume(name);
  if (!vol) return j.CreateVolume(name, size_bytes, block_bytes);
  if (vol.value().size_bytes != size_bytes) {
    return Status::InvalidArgument("volume " + name + " is " +
                                   std::to_string(vol.value().size_bytes) + " bytes, not " +
                                   std::to_string(size_bytes));
  }
  if (block_given && vol.value().block_bytes != block_bytes) {
    return Status::InvalidArgument("volume " + name + " has " +
                                   std::to_string(vol.value().block_bytes) +
                                   "-byte blocks, not " + std::to_string(block_bytes));
  }
  return vol;
}

}  // namespace

int RunImport(const ImportArgs& a) {
  auto run = [&]() -> Status {
    BOOST_OUTCOME_TRY(codec, ParseCodec(a.codec));
    int fd = ::open(a.image.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno(errno, "cannot open image " + a.image);
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    off_t size = ::lseek(fd, 0, SEEK_END);
    if (size <= 0 || size % 512) {
      return Status::InvalidArgument("image " + a.image + " is " + std::to_string(size) +
                                     " bytes: not a positive multiple of 512");
    }
    BOOST_OUTCOME_TRY(j, OpenJournal(a.journal_dir, true, /*create=*/true, codec));
    BOOST_OUTCOME_TRY(vol, FindOrCreate(*j, a.name, static_cast<uint64_t>(size), a.block_bytes,
                                        a.block_given));
    auto read = [&](uint64_t off, char* buf, size_t len) -> Status {
      size_t done = 0;
      while (done < len) {
        ssize_t n = ::pread(fd, buf + done, len - done, static_cast<off_t>(off + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Status::FromErrno(errno, "read image " + a.image);
        if (n == 0) return Status::IOError("image " + a.image + " shrank while importing");
        done += static_cast<size_t>(n);
      }
      return Status::Ok();
    };
    BOOST_OUTCOME_TRY(seq, j->Import(vol.id, read, NowNs()));
    uint64_t changed = 0;
    if (seq != kNoSeq) {
      BOOST_OUTCOME_TRY(ext, j->ChangedExtents(vol.id, seq == 0 ? kNoSeq : seq - 1, seq));
      for (const Extent& e : ext) changed += (e.length_bytes + vol.block_bytes - 1) / vol.block_bytes;
    }
    if (a.json) {
      nlohmann::json out = {{"volume", vol.name}, {"blocks_changed", changed}};
      out["seq"] = seq == kNoSeq ? nlohmann::json(nullptr) : nlohmann::json(seq);
      std::printf("%s\n", out.dump().c_str());
    } else if (seq == kNoSeq) {
      std::printf("imported %s: nothing changed since the latest point\n", vol.name.c_str());
    } else {
      std::printf("imported %s as seq %llu: %llu blocks %s\n", vol.name.c_str(),
                  static_cast<unsigned long long>(seq), static_cast<unsigned long long>(changed),
                  seq == 0 ? "with data" : "changed");
    }
    return Status::Ok();
  };
  Status s = run();
  return s.ok() ? 0 : Fail(s, a.json);
}

int RunReplay(const ReplayArgs& a) {
  auto run = [&]() -> Status {
    if (a.align != 0 && (a.align % 512 || (a.align & (a.align - 1)))) {
      return Status::InvalidArgument("--align must be a power of two multiple of 512");
    }
    BOOST_OUTCOME_TRY(trace, ReadTrace(a.trace));
    BOOST_OUTCOME_TRY(j, OpenJournal(a.journal_dir, true, /*create=*/true));
    auto found = j->FindVolume(a.name);
    journal::VolumeInfo vol;
    if (found) {
      vol = found.value();
    } else {
      BOOST_OUTCOME_TRY(v, j->CreateVolume(a.name, a.size_bytes, a.block_bytes));
      vol = v;
      // Seq 0: the volume as protection found it, here all zeros.
      auto zeros = [](uint64_t, char* buf, size_t len) {
        std::memset(buf, 0, len);
        return Status::Ok();
      };
      BOOST_OUTCOME_TRY(s0, j->Import(vol.id, zeros, NowNs()));
      (void)s0;
    }
    BOOST_OUTCOME_TRY(last, j->LastSeq(vol.id));
    Seq first_seq = last + 1;
    Seq seq = last;
    TimeNs prev = 0;
    uint64_t writes = 0;
    for (const TraceRequest& r : trace) {
      if (!r.write) continue;
      FoldedExtent e = FoldRequest(r, vol.size_bytes, a.align);
      std::string data = TracePayload(r.line, e.length_bytes);
      journal::WriteOp op;
      op.seq = ++seq;
      op.time_ns = prev = std::max(prev, NowNs());
      op.offset_bytes = e.offset_bytes;
      op.length_bytes = e.length_bytes;
      op.data = data;
      TM_RETURN_IF_ERROR(j->Apply(vol.id, op).Annotate("trace line " + std::to_string(r.line + 1)));
      ++writes;
    }
    BOOST_OUTCOME_TRY(durable, j->Sync(vol.id));
    if (a.json) {
      nlohmann::json out = {{"volume", vol.name}, {"first_seq", first_seq},
                            {"last_seq", durable}, {"writes", writes}};
      std::printf("%s\n", out.dump().c_str());
    } else {
      std::printf("replayed %llu writes of %s into %s as seqs %llu to %llu\n",
                  static_cast<unsigned long long>(writes), a.trace.c_str(), vol.name.c_str(),
                  static_cast<unsigned long long>(first_seq),
                  static_cast<unsigned long long>(durable));
    }
    return Status::Ok();
  };
  Status s = run();
  return s.ok() ? 0 : Fail(s, a.json);
}

}  // namespace tidemark::tools
