#include "tidemark/journal/time.h"

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <ctime>

namespace tidemark {

TimeNs NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<TimeNs>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string FormatTime(TimeNs t) {
  int64_t sec = t / 1'000'000'000;
  int64_t ns = t % 1'000'000'000;
  if (ns < 0) {
    ns += 1'000'000'000;
    --sec;
  }
  time_t tt = static_cast<time_t>(sec);
  tm parts{};
  gmtime_r(&tt, &parts);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ",
                parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour,
                parts.tm_min, parts.tm_sec, static_cast<long long>(ns));
  return buf;
}

namespace {

// Reads exactly n digits at *p.
bool Digits(std::string_view s, size_t* p, int n, int* out) {
  int v = 0;
  for (int i = 0; i < n; ++i) {
    if (*p >= s.size() || !std::isdigit(static_cast<unsigned char>(s[*p]))) return false;
    v = v * 10 + (s[(*p)++] - '0');
  }
  *out = v;
  return true;
}

bool Expect(std::string_view s, size_t* p, std::string_view chars) {
  if (*p >= s.size() || chars.find(s[*p]) == std::string_view::npos) return false;
  ++*p;
  return true;
}

Result<TimeNs> ParseRelative(std::string_view text, TimeNs now_ns) {
  std::string_view num = text.substr(1, text.size() - 2);
  if (num.empty()) return Status::InvalidArgument("");
  int64_t n = 0;
  for (char c : num) {
    if (!std::isdigit(static_cast<unsigned char>(c)) || n > 1'000'000'000) {
      return Status::InvalidArgument("");
    }
    n = n * 10 + (c - '0');
  }
  int64_t unit_s = 0;
  switch (text.back()) {
    case 's': unit_s = 1; break;
    case 'm': unit_s = 60; break;
    case 'h': unit_s = 3600; break;
    case 'd': unit_s = 86400; break;
    case 'w': unit_s = 7 * 86400; break;
    default: return Status::InvalidArgument("");
  }
  if (n > INT64_MAX / (unit_s * 1'000'000'000)) return Status::InvalidArgument("");  // overflow
  return now_ns - n * unit_s * 1'000'000'000;
}

}  // namespace

Result<TimeNs> ParseTime(std::string_view text, TimeNs now_ns) {
  Status bad = Status::InvalidArgument(
      "bad time '" + std::string(text) +
      "': want RFC 3339 (2026-11-23T10:14:59Z) or relative (-15m, -2h, -1d)");
  if (text == "now") return now_ns;
  if (text.size() >= 3 && text[0] == '-') {
    auto r = ParseRelative(text, now_ns);
    if (!r) return bad;
    return r.value();
  }
  size_t p = 0;
  tm parts{};
  int year, mon, day, hour, min, sec;
  if (!Digits(text, &p, 4, &year) || !Expect(text, &p, "-") || !Digits(text, &p, 2, &mon) ||
      !Expect(text, &p, "-") || !Digits(text, &p, 2, &day) || !Expect(text, &p, "Tt ") ||
      !Digits(text, &p, 2, &hour) || !Expect(text, &p, ":") || !Digits(text, &p, 2, &min) ||
      !Expect(text, &p, ":") || !Digits(text, &p, 2, &sec)) {
    return bad;
  }
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mon < 1 || mon > 12 || day < 1 || hour > 23 || min > 59 || sec > 60) return bad;
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day > kDays[mon - 1] + (mon == 2 && leap ? 1 : 0)) return bad;
  int64_t frac_ns = 0;
  if (p < text.size() && text[p] == '.') {
    ++p;
    int digits = 0;
    while (p < text.size() && std::isdigit(static_cast<unsigned char>(text[p]))) {
      if (digits < 9) frac_ns = frac_ns * 10 + (text[p] - '0');
      ++digits;
      ++p;
    }
    if (digits == 0) return bad;
    for (int i = digits; i < 9; ++i) frac_ns *= 10;
  }
  int64_t offset_s = 0;
  if (p < text.size() && (text[p] == 'Z' || text[p] == 'z')) {
    ++p;
  } else if (p < text.size() && (text[p] == '+' || text[p] == '-')) {
    int sign = text[p++] == '-' ? -1 : 1;
    int oh, om;
    if (!Digits(text, &p, 2, &oh) || !Expect(text, &p, ":") || !Digits(text, &p, 2, &om)) {
      return bad;
    }
    offset_s = sign * (oh * 3600 + om * 60);
  } else {
    return bad;  // RFC 3339 requires a zone
  }
  if (p != text.size()) return bad;
  parts.tm_year = year - 1900;
  parts.tm_mon = mon - 1;
  parts.tm_mday = day;
  parts.tm_hour = hour;
  parts.tm_min = min;
  parts.tm_sec = sec;
  int64_t epoch_s = static_cast<int64_t>(timegm(&parts)) - offset_s;
  // Nanoseconds since 1970 fit in int64 until 2262: later times are in the
  // future for every caller; earlier than 1678 saturate (before any point).
  constexpr int64_t kMaxS = INT64_MAX / 1'000'000'000 - 1;
  if (epoch_s > kMaxS) {
    return Status::InvalidArgument("time '" + std::string(text) + "' is in the future");
  }
  if (epoch_s < -kMaxS) return INT64_MIN + 1;
  return epoch_s * 1'000'000'000 + frac_ns;
}

}  // namespace tidemark
