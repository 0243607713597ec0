// tidemark mount (--journal DIR | --target HOST:PORT ...) VOLUME (point)
//                --listen unix:SOCK|HOST:PORT [--writable] [--json]
// Serves one point of a volume as an NBD export (recovery/snapshot.h), read
// straight from the journal or from a target's read route; with --writable
// behind a private copy-on-write overlay that is thrown away at exit.
#include <csignal>
#include <cstdio>

#include "cli.h"
#include "tidemark/capture/nbd.h"
#include "tidemark/journal/time.h"
#include "tidemark/recovery/snapshot.h"

namespace tidemark::tools {

namespace {

struct MountArgs {
  std::string journal_dir;
  RemoteArgs remote;
  std::string volume;
  PointArgs point;
  std::string listen;
  bool writable = false;
  std::string overlay_dir;
  uint64_t overlay_granularity = 64 << 10;
  unsigned readers = 2;
  uint64_t cache_mib = 256;
  bool json = false;
};

capture::nbd::Server* g_server = nullptr;
void OnSignal(int) {
  if (g_server) g_server->StopFromSignal();
}

int RunMount(const MountArgs& a) {
  auto run = [&]() -> Status {
    TM_RETURN_IF_ERROR(a.remote.Check(a.journal_dir));
    if (a.listen.empty()) return Status::InvalidArgument("--listen is required");
    if (a.overlay_granularity > (1u << 30)) {
      return Status::InvalidArgument("--overlay-granularity is over 1 GiB");
    }
    BOOST_OUTCOME_TRY(spec, a.point.Spec(NowNs()));
    recovery::SnapshotOptions o;
    o.readers = a.readers;
    o.writable = a.writable;
    o.overlay_dir = a.overlay_dir;
    o.overlay_granularity_bytes = static_cast<uint32_t>(a.overlay_granularity);
    journal::Point point;
    recovery::BlockReaderFactory factory;
    if (a.remote.given()) {
      BOOST_OUTCOME_TRY(client, a.remote.Client());
      BOOST_OUTCOME_TRY(v, client->FindVolume(a.volume));
      BOOST_OUTCOME_TRY(p, RemoteResolve(*client, a.volume, spec));
      o.volume = v;
      point = p;
      // One connection per reader (a RemoteClient is single-threaded); each
      // miss is a round trip, so a cache of the point's bytes sits in front.
      o.cache_bytes = a.cache_mib << 20;
      auto first = std::make_shared<std::unique_ptr<target::RemoteClient>>(std::move(client));
      factory = [&a, first, v, seq = p.seq]() -> Result<recovery::BlockReadFn> {
        std::shared_ptr<target::RemoteClient> c;
        if (*first) {
          c = std::move(*first);
        } else {
          BOOST_OUTCOME_TRY(fresh, a.remote.Client());
          c = std::move(fresh);
        }
        return recovery::BlockReadFn(
            [c, v, seq](uint64_t b, uint32_t n, char* out, journal::BlockState* st) {
              return c->ReadBlocks(v, seq, b, n, out, st);
            });
      };
    } else {
      journal::OpenOptions jo;
      jo.read_only = true;  // a RocksDB secondary when a daemon writes the journal
      jo.block_cache_bytes = a.cache_mib << 20;
      BOOST_OUTCOME_TRY(j, journal::Journal::Open(a.journal_dir, jo));
      BOOST_OUTCOME_TRY(v, j->FindVolume(a.volume));
      BOOST_OUTCOME_TRY(p, j->Resolve(v.id, spec, NowNs()));
      o.volume = v;
      point = p;
      factory = recovery::JournalReaders(std::move(j), v.id, p.seq);
    }
    BOOST_OUTCOME_TRY(device, recovery::SnapshotDevice::Open(o, factory));
    capture::nbd::ServerOptions sopts;
    sopts.listen = a.listen;
    sopts.exports.push_back({o.volume.name,
                             "tidemark snapshot of " + o.volume.name + " at seq " +
                                 std::to_string(point.seq) + (a.writable ? " (writable)" : ""),
                             device});
    BOOST_OUTCOME_TRY(server, capture::nbd::Server::Start(sopts));
    g_server = server.get();
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    if (a.json) {
      nlohmann::json ready = {{"volume", o.volume.name},     {"point", PointJson(point)},
                              {"listen", server->address()}, {"export", o.volume.name},
                              {"writable", a.writable},      {"size_bytes", o.volume.size_bytes}};
      std::printf("%s\n", ready.dump().c_str());
    } else {
      std::printf("mounted %s at seq %llu (%s) on %s, %s\n", o.volume.name.c_str(),
                  static_cast<unsigned long long>(point.seq), FormatTime(point.time_ns).c_str(),
                  server->address().c_str(),
                  a.writable ? "writable (changes are thrown away at exit)" : "read-only");
    }
    std::fflush(stdout);
    server->Wait();
    g_server = nullptr;
    server.reset();  // every reply is out before the device goes
    recovery::SnapshotStats st = device->stats();
    const uint64_t overlay_bytes = st.overlay_chunks * o.overlay_granularity_bytes;
    if (a.json) {
      nlohmann::json done = {{"stopped", o.volume.name},
                             {"reads", st.reads},
                             {"read_bytes", st.read_bytes},
                             {"writes", st.writes},
                             {"overlay_bytes", overlay_bytes}};
      std::printf("%s\n", done.dump().c_str());
    } else {
      std::printf("unmounted %s: %llu reads (%s), %llu writes (%s overlay thrown away)\n",
                  o.volume.name.c_str(), static_cast<unsigned long long>(st.reads),
                  HumanBytes(st.read_bytes).c_str(), static_cast<unsigned long long>(st.writes),
                  HumanBytes(overlay_bytes).c_str());
    }
    return Status::Ok();
  };
  Status s = run();
  return s.ok() ? 0 : Fail(s, a.json);
}

}  // namespace

void AddMountCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<MountArgs>();
  CLI::App* cmd = app.add_subcommand(
      "mount", "serve a volume as it was at a point as an NBD export (a virtual snapshot)");
  cmd->add_option("--journal", a->journal_dir, "journal directory");
  a->remote.Add(cmd);
  cmd->add_option("VOLUME", a->volume, "volume name")->required();
  a->point.Add(cmd);
  cmd->add_option("--listen", a->listen, "unix:SOCKET or HOST:PORT for NBD clients")->required();
  cmd->add_flag("--writable", a->writable,
                "accept writes into a private copy-on-write overlay, thrown away at exit");
  cmd->add_option("--overlay-dir", a->overlay_dir,
                  "directory of the overlay's (unlinked) temp file (default: $TMPDIR or /tmp)");
  cmd->add_option("--overlay-granularity", a->overlay_granularity,
                  "copy-up unit of the overlay, a power of two >= 4K (64K, 1M, ...)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  cmd->add_option("--readers", a->readers, "reader threads (each with its own journal reader)")
      ->check(CLI::Range(1u, 64u))
      ->capture_default_str();
  cmd->add_option("--cache-mib", a->cache_mib,
                  "read cache in MiB (the journal's block cache; with --target, fetched blocks)")
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "print the ready line (and the final one) as JSON");
  cmd->callback([a, exit_code] { *exit_code = RunMount(*a); });
}

}  // namespace tidemark::tools
