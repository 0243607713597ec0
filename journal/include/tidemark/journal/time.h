// Wall-clock times as the command line shows and takes them.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "tidemark/journal/status.h"
#include "tidemark/journal/types.h"

namespace tidemark {

// Now, nanoseconds since the Unix epoch (CLOCK_REALTIME).
TimeNs NowNs();

// RFC 3339 in UTC with nine fraction digits: "2026-11-23T10:14:59.123456789Z".
std::string FormatTime(TimeNs t);

// Parses RFC 3339 ("2026-11-23T10:14:59Z", "2026-11-23T10:14:59.5+02:00",
// 'T' or ' ' between date and time, up to 9 fraction digits) or a time
// relative to now_ns: "-15m", "-90s", "-2h", "-1d", "-1w", or "now".
// kInvalidArgument naming the text otherwise.
Result<TimeNs> ParseTime(std::string_view text, TimeNs now_ns);

}  // namespace tidemark
