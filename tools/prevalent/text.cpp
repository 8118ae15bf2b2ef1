// Times in ISO 8601, --from/--to positions, record payloads as JSON, and output lines that
// stop quietly when the reader of a pipe has gone (jq, head).
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <regex>

#include "common.hpp"
#include "prevalent/codec.hpp"

namespace prevalent::tool {

std::int64_t parse_iso_time(const std::string& text, bool end_of_day) {
  static const std::regex form(
      R"((\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?)"
      R"((Z|[+-]\d{2}:?\d{2})?)");
  std::smatch m;
  if (!std::regex_match(text, m, form))
    throw tool_error(exit_usage, "'" + text +
                                     "' is not an ISO 8601 time (e.g. 2026-11-23T01:00:00Z, "
                                     "2026-11-23T01:00:00.5+01:00, 2026-11-23)");
  auto num = [&](int i) { return m[i].matched ? std::stoi(m[i].str()) : 0; };
  std::tm tm{};
  tm.tm_year = num(1) - 1900;
  tm.tm_mon = num(2) - 1;
  tm.tm_mday = num(3);
  tm.tm_hour = num(4);
  tm.tm_min = num(5);
  tm.tm_sec = num(6);
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60)
    throw tool_error(exit_usage, "'" + text + "': a date or time field is out of range");
  std::int64_t secs = ::timegm(&tm);
  std::int64_t frac = 0;
  if (m[7].matched) {
    std::string digits = m[7].str();
    digits.resize(9, '0');
    frac = std::stoll(digits);
  }
  if (m[8].matched && m[8].str() != "Z") {
    const std::string z = m[8].str();
    const int hours = std::stoi(z.substr(1, 2));
    const int minutes = std::stoi(z.substr(z.size() - 2));
    const std::int64_t offset = hours * 3600 + minutes * 60;
    secs -= z[0] == '+' ? offset : -offset;
  }
  const bool date_only = !m[4].matched;
  if (date_only && end_of_day) return (secs + 86400) * 1000000000 - 1;
  return secs * 1000000000 + frac;
}

position parse_position(const std::string& text, const char* option, bool end_of_day) {
  position p;
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) {
    try {
      p.seq = std::stoull(text);
    } catch (const std::exception&) {
      throw tool_error(exit_usage, std::string(option) + " " + text + ": number out of range");
    }
  } else {
    try {
      p.time_ns = parse_iso_time(text, end_of_day);
    } catch (const tool_error& e) {
      throw tool_error(exit_usage, std::string(option) +
                                       " takes a sequence number or an ISO 8601 time: " + e.what());
    }
  }
  return p;
}

nlohmann::json decode_record(const record_view& r) {
  auto j = prevalent::decode(r.payload, r.codec);
  if (!j || !j->is_object() || !j->contains("cmd"))
    throw tool_error(exit_damaged, r.file + " at offset " + std::to_string(r.offset) + ": record " +
                                       std::to_string(r.seq) + " is not a " + codec_name(r.codec) +
                                       " command envelope");
  return std::move(*j);
}

std::string plural(std::uint64_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

bool print_line(const std::string& line) {
  // Buffered by stdio (line by line on a terminal); a closed pipe shows as EPIPE here or in
  // finish_output() (SIGPIPE is ignored, main.cpp).
  if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size() ||
      std::fputc('\n', stdout) == EOF) {
    if (errno == EPIPE) return false;
    throw tool_error(exit_usage, "writing to standard output failed");
  }
  return true;
}

bool finish_output() {
  if (std::fflush(stdout) != 0) {
    if (errno == EPIPE) return false;
    throw tool_error(exit_usage, "writing to standard output failed");
  }
  return true;
}

}  // namespace prevalent::tool
