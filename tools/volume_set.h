// VOLUME | --group G: the volumes a reading command (restore, mount, drill
// start) acts on, and the one point it reads them at. A consistency group's
// members share one seq space (docs/design.md#consistency-groups), so a group's point is
// one seq, resolved once, through its first member; every member is read at
// that seq.
#pragma once

#include <string>
#include <vector>

#include "tidemark/journal/journal.h"
#include "tidemark/target/remote_client.h"

namespace tidemark::tools {

struct VolumeSet {
  std::string group;                         // empty: one volume
  std::vector<journal::VolumeInfo> volumes;  // the volume, or the members in member order
  journal::Point point;                      // the point of every one of them
};

// Exactly one of VOLUME (`volume`) and --group (`group`): kInvalidArgument,
// one line, otherwise.
Status CheckVolumeOrGroup(const std::string& volume, const std::string& group);

// The volume or group and the point `spec` names for it, from a local
// journal (Journal::Resolve at now_ns) or from a target (POST .../resolve
// of the first volume). Errors: CheckVolumeOrGroup's; kNotFound for an
// unknown volume or group (naming the groups there are, locally); those of
// Resolve (no such bookmark or seq, a time in the future, a seq inside an
// unordered interval: kInvalidArgument).
Result<VolumeSet> ResolveVolumeSet(const journal::Journal& journal, const std::string& volume,
                                   const std::string& group, const journal::PointSpec& spec,
                                   TimeNs now_ns);
Result<VolumeSet> ResolveVolumeSet(target::RemoteClient& client, const std::string& volume,
                                   const std::string& group, const journal::PointSpec& spec);

}  // namespace tidemark::tools
