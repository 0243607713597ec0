// Small file-system helpers shared by the journal, the target and the tools.
#pragma once

#include <string>

#include "tidemark/journal/status.h"

namespace tidemark {

// fsync(2) of a directory, so that the names created, renamed or removed in it
// are durable. The error names the directory.
Status SyncDirectory(const std::string& dir);

}  // namespace tidemark
