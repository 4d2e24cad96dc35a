// Leveled logging to stderr (and syslog when the daemon runs in the background).
#pragma once
#include <string>

namespace dzfs {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

void log_set_level(LogLevel level);
void log_to_syslog(bool on);
void log_msg(LogLevel level, const std::string& msg);
inline void log_error(const std::string& m) { log_msg(LogLevel::kError, m); }
inline void log_warn(const std::string& m) { log_msg(LogLevel::kWarn, m); }
inline void log_info(const std::string& m) { log_msg(LogLevel::kInfo, m); }

}  // namespace dzfs
