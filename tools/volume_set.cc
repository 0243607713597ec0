#include "volume_set.h"

#include "cli.h"

namespace tidemark::tools {

Status CheckVolumeOrGroup(const std::string& volume, const std::string& group) {
  if (volume.empty() && group.empty()) return Status::InvalidArgument("give a VOLUME or --group G");
  if (!volume.empty() && !group.empty()) {
    return Status::InvalidArgument("give a VOLUME or --group G, not both (VOLUME '" + volume +
                                   "' with --group " + group + ")");
  }
  return Status::Ok();
}

Result<VolumeSet> ResolveVolumeSet(const journal::Journal& journal, const std::string& volume,
                                   const std::string& group, const journal::PointSpec& spec,
                                   TimeNs now_ns) {
  TM_RETURN_IF_ERROR(CheckVolumeOrGroup(volume, group));
  VolumeSet set;
  set.group = group;
  if (group.empty()) {
    BOOST_OUTCOME_TRY(v, journal.FindVolume(volume));
    set.volumes.push_back(v);
  } else {
    BOOST_OUTCOME_TRY(g, journal.FindGroup(group));
    set.volumes = g.volumes;
  }
  if (set.volumes.empty()) return Status::NotFound("group " + group + " has no volumes");
  BOOST_OUTCOME_TRY(p, journal.Resolve(set.volumes[0].id, spec, now_ns));
  set.point = p;
  return set;
}

Result<VolumeSet> ResolveVolumeSet(target::RemoteClient& client, const std::string& volume,
                                   const std::string& group, const journal::PointSpec& spec) {
  TM_RETURN_IF_ERROR(CheckVolumeOrGroup(volume, group));
  VolumeSet set;
  set.group = group;
  if (group.empty()) {
    BOOST_OUTCOME_TRY(v, client.FindVolume(volume));
    set.volumes.push_back(v);
  } else {
    BOOST_OUTCOME_TRY(g, client.FindGroup(group));
    set.volumes = g.volumes;
  }
  if (set.volumes.empty()) return Status::NotFound("group " + group + " has no volumes");
  BOOST_OUTCOME_TRY(p, RemoteResolve(client, set.volumes[0].name, spec));
  set.point = p;
  return set;
}

}  // namespace tidemark::tools
