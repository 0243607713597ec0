// tidemark mount (--journal DIR | --target HOST:PORT ...) (VOLUME | --group G)
//                (point) --listen unix:SOCK|HOST:PORT [--writable] [--json]
// Serves one point of a volume as an NBD export (recovery/snapshot.h), read
// straight from the journal or from a target's read route; with --writable
// behind a private copy-on-write overlay that is thrown away at exit. A
// group is served at one group point (volume_set.h), one export per member
// named by the member, each with an overlay of its own.
#include <csignal>
#include <cstdio>

#include "cli.h"
#include "tidemark/capture/nbd.h"
#include "tidemark/journal/time.h"
#include "tidemark/recovery/snapshot.h"
#include "volume_set.h"

namespace tidemark::tools {

namespace {

struct MountArgs {
  std::string journal_dir;
  RemoteArgs remote;
  std::string volume;
  std::string group;
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

// Readers of volume `v` at `seq` on the target: one connection per reader (a
// RemoteClient is single-threaded); the first reader made takes over
// `*first` (the connection that resolved the point), once.
recovery::BlockReaderFactory RemoteReaders(
    const RemoteArgs& remote, std::shared_ptr<std::unique_ptr<target::RemoteClient>> first,
    const journal::VolumeInfo& v, Seq seq) {
  return [&remote, first, v, seq]() -> Result<recovery::BlockReadFn> {
    std::shared_ptr<target::RemoteClient> c;
    if (*first) {
      c = std::move(*first);
    } else {
      BOOST_OUTCOME_TRY(fresh, remote.Client());
      c = std::move(fresh);
    }
    return recovery::BlockReadFn(
        [c, v, seq](uint64_t b, uint32_t n, char* out, journal::BlockState* st) {
          return c->ReadBlocks(v, seq, b, n, out, st);
        });
  };
}

// The final line's numbers of one device.
nlohmann::json DeviceStats(const recovery::SnapshotDevice& d, uint32_t granularity_bytes) {
  recovery::SnapshotStats st = d.stats();
  return {{"reads", st.reads},
          {"read_bytes", st.read_bytes},
          {"writes", st.writes},
          {"overlay_bytes", st.overlay_chunks * granularity_bytes}};
}

std::string StatsText(const nlohmann::json& st) {
  return st["reads"].dump() + " reads (" + HumanBytes(st["read_bytes"].get<uint64_t>()) + "), " +
         st["writes"].dump() + " writes (" + HumanBytes(st["overlay_bytes"].get<uint64_t>()) +
         " overlay thrown away)";
}

int RunMount(const MountArgs& a) {
  auto run = [&]() -> Status {
    TM_RETURN_IF_ERROR(a.remote.Check(a.journal_dir));
    TM_RETURN_IF_ERROR(CheckVolumeOrGroup(a.volume, a.group));
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
    VolumeSet set;
    std::vector<recovery::BlockReaderFactory> factories;  // one per volume of the set
    if (a.remote.given()) {
      BOOST_OUTCOME_TRY(client, a.remote.Client());
      BOOST_OUTCOME_TRY(resolved, ResolveVolumeSet(*client, a.volume, a.group, spec));
      set = resolved;
      // Each miss is a round trip, so a cache of the point's bytes sits in
      // front; a group's members share --cache-mib.
      o.cache_bytes = (a.cache_mib << 20) / set.volumes.size();
      auto first = std::make_shared<std::unique_ptr<target::RemoteClient>>(std::move(client));
      for (const journal::VolumeInfo& v : set.volumes) {
        factories.push_back(RemoteReaders(a.remote, first, v, set.point.seq));
      }
    } else {
      journal::OpenOptions jo;
      jo.read_only = true;  // a RocksDB secondary when a daemon writes the journal
      jo.block_cache_bytes = a.cache_mib << 20;
      BOOST_OUTCOME_TRY(j, OpenJournal(a.journal_dir, jo));  // waits for a starting daemon
      BOOST_OUTCOME_TRY(resolved, ResolveVolumeSet(*j, a.volume, a.group, spec, NowNs()));
      set = resolved;
      // One journal for every member: PointReaders of different volumes may
      // read at once (journal.h), and they share its block cache.
      std::shared_ptr<const journal::Journal> shared = std::move(j);
      for (const journal::VolumeInfo& v : set.volumes) {
        factories.push_back(recovery::JournalReaders(shared, v.id, set.point.seq));
      }
    }
    // One export per volume, named by the volume (as `protect` serves a group).
    std::vector<std::shared_ptr<recovery::SnapshotDevice>> devices;
    capture::nbd::ServerOptions sopts;
    sopts.listen = a.listen;
    for (size_t i = 0; i < set.volumes.size(); ++i) {
      o.volume = set.volumes[i];
      BOOST_OUTCOME_TRY(device, recovery::SnapshotDevice::Open(o, factories[i]));
      devices.push_back(device);
      sopts.exports.push_back({o.volume.name,
                               "tidemark snapshot of " + o.volume.name + " at seq " +
                                   std::to_string(set.point.seq) +
                                   (a.writable ? " (writable)" : ""),
                               device});
    }
    BOOST_OUTCOME_TRY(server, capture::nbd::Server::Start(sopts));
    g_server = server.get();
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    const std::string& first = set.volumes[0].name;
    const std::string what = set.group.empty() ? first : "group " + set.group;
    if (a.json) {
      nlohmann::json ready = {
          {"point", PointJson(set.point)}, {"listen", server->address()}, {"writable", a.writable}};
      if (set.group.empty()) {
        ready.update({{"volume", first}, {"export", first}, {"size_bytes", o.volume.size_bytes}});
      } else {
        nlohmann::json vols = nlohmann::json::array();
        for (const journal::VolumeInfo& v : set.volumes) {
          vols.push_back({{"volume", v.name}, {"export", v.name}, {"size_bytes", v.size_bytes}});
        }
        ready.update({{"group", set.group}, {"volumes", vols}});
      }
      std::printf("%s\n", ready.dump().c_str());
    } else {
      std::string names;
      for (const journal::VolumeInfo& v : set.volumes) {
        names += (names.empty() ? "" : ", ") + v.name;
      }
      std::printf("mounted %s at seq %llu (%s) on %s, %s\n",
                  (set.group.empty() ? what : what + " (" + names + ")").c_str(),
                  static_cast<unsigned long long>(set.point.seq),
                  FormatTime(set.point.time_ns).c_str(), server->address().c_str(),
                  a.writable ? "writable (changes are thrown away at exit)" : "read-only");
    }
    std::fflush(stdout);
    server->Wait();
    g_server = nullptr;
    server.reset();  // every reply is out before the devices go
    nlohmann::json per = nlohmann::json::array();
    nlohmann::json total = {{"reads", 0}, {"read_bytes", 0}, {"writes", 0}, {"overlay_bytes", 0}};
    std::string text;
    for (size_t i = 0; i < devices.size(); ++i) {
      nlohmann::json st = DeviceStats(*devices[i], o.overlay_granularity_bytes);
      for (auto& [k, v] : total.items()) v = v.get<uint64_t>() + st[k].get<uint64_t>();
      text += (text.empty() ? "" : "; ") + set.volumes[i].name + " " + StatsText(st);
      st["volume"] = set.volumes[i].name;
      per.push_back(st);
    }
    if (a.json) {
      nlohmann::json done = {{"stopped", set.group.empty() ? first : set.group}};
      done.update(total);
      if (!set.group.empty()) done.update({{"group", set.group}, {"volumes", per}});
      std::printf("%s\n", done.dump().c_str());
    } else if (set.group.empty()) {
      std::printf("unmounted %s: %s\n", first.c_str(), StatsText(total).c_str());
    } else {
      std::printf("unmounted %s: %s\n", what.c_str(), text.c_str());
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
  cmd->add_option("VOLUME", a->volume, "volume name (or --group)");
  cmd->add_option("--group", a->group,
                  "serve every volume of a consistency group at one point: one export per "
                  "volume, named by the volume, each with its own overlay when --writable");
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
  AddWaitOption(cmd);
  cmd->callback([a, exit_code] { *exit_code = RunMount(*a); });
}

}  // namespace tidemark::tools
