// Arguments of `journal import` and `journal replay` (cmd_import.cc) and
// `journal upgrade` (cmd_upgrade.cc).
#pragma once

#include <cstdint>
#include <string>

namespace tidemark::tools {

struct ImportArgs {
  std::string journal_dir;
  std::string name;
  std::string image;
  uint32_t block_bytes = 4096;
  bool block_given = false;
  std::string codec = "zstd";
  bool json = false;
};
int RunImport(const ImportArgs& a);

struct ReplayArgs {
  std::string journal_dir;
  std::string name;
  std::string trace;
  uint64_t align = 0;
  uint64_t size_bytes = uint64_t{1} << 30;
  uint32_t block_bytes = 4096;
  bool json = false;
};
int RunReplay(const ReplayArgs& a);

// `journal upgrade` (cmd_upgrade.cc).
struct UpgradeArgs {
  std::string journal_dir;
  bool remove_old = false;
  bool json = false;
};
int RunUpgrade(const UpgradeArgs& a);

}  // namespace tidemark::tools
