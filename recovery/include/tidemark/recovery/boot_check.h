// Boot checks of DR drills (issue #5): boot a disk in qemu, with no network
// and its serial console in a file, and pass when the guest prints a marker
// on that console within a time limit.
//
// qemu runs as
//   qemu-system-x86_64 -accel tcg -cpu max -m 256 -nographic -no-reboot
//     -display none -monitor none -nic none -serial file:CONSOLE_LOG
//     -drive file=DRIVE,format=raw,if=virtio,cache=none
//     [-drive file=EXTRA,format=raw,if=virtio,cache=none ...]
// (-cpu max: with TCG's default CPU a kernel's decompressor alone takes
// seconds). The guest is killed (SIGTERM, then SIGKILL) as soon as the
// marker's line is complete in the console log, or the time is up: a
// drill's disk is a throwaway overlay, so a power cut there costs nothing.
// The marker's line is complete at the first newline after the marker; a
// line that gets none (a prompt waiting for input, "debian login: ") once
// the console has been quiet for prompt_quiet after the marker. So the log
// kept afterwards holds the whole line (the guest prints it a few bytes at
// a time, and slowly on a loaded host), not the marker cut short (issue
// 12). qemu's own stdout and stderr go to CONSOLE_LOG.qemu.
//
// Thread-safety: BootCheck() blocks the calling thread; calls on different
// logs may run at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tidemark/journal/status.h"

namespace tidemark::recovery {

struct BootCheckOptions {
  // The -drive file= value, verbatim (commas are doubled for qemu here): an
  // image path, or an NBD export such as nbd:unix:SOCK:exportname=NAME.
  std::string drive;
  std::string drive_format = "raw";
  // More disks, attached after the boot disk as virtio disks of their own
  // (the guest's vdb, vdc, ...: the other members of a group drill), in
  // this order, with the boot disk's format and cache mode rules.
  std::vector<std::string> extra_drives;
  // Passes when this text appears anywhere in the console output (a login
  // prompt is mid-line: "debian login:"). Not empty.
  std::string marker = "login:";
  // The time limit for the marker. A marker seen within it passes, even if
  // its line is still incomplete when the time is up.
  std::chrono::milliseconds timeout{120'000};
  // A marker line without a newline is complete once the console has
  // written nothing for this long after the marker (a prompt). Not zero.
  std::chrono::milliseconds prompt_quiet{3'000};
  // The serial console's file (created or truncated; kept afterwards).
  std::string console_log;
  std::string qemu = "qemu-system-x86_64";
  std::string accel = "tcg";
  uint32_t memory_mib = 256;
  std::vector<std::string> extra_args;  // appended to qemu's command line
  // Polled every 100 ms while the guest boots: a non-empty answer ends the
  // check as a failure with that reason (e.g. the export's server died).
  std::function<std::string()> abort_reason;
};

struct BootCheckResult {
  bool passed = false;
  // One line: "marker 'login:' seen after 5.1 s" (when the marker showed;
  // qemu is stopped once its line is complete), "no marker 'login:' within
  // 60 s; last console line: ...", "qemu exited with status 1 after 0.3 s,
  // before the marker: <qemu's last line>", ...
  std::string reason;
  std::chrono::milliseconds elapsed{0};  // from qemu's start to the verdict
};

// Boots options.drive and watches its console. A guest that fails to boot
// is a result (passed == false), not an error. Errors: kInvalidArgument (an
// empty drive or extra drive, marker or console_log, a zero timeout or
// prompt_quiet), kNotFound (qemu is not installed), kIOError (the console
// log cannot be created or read).
Result<BootCheckResult> BootCheck(const BootCheckOptions& options);

// The last non-empty line of `text`, with CR, escape sequences and other
// control characters dropped, cut to at most max_chars.
std::string LastConsoleLine(std::string_view text, size_t max_chars = 160);

}  // namespace tidemark::recovery
