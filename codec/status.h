// dzfs codec: errors as values. No exception crosses the codec API; bad input never aborts.
#pragma once
#include <string>
#include <utility>
#include <variant>

namespace dzfs::codec {

enum class ErrorCode : int {
  kOk = 0,
  kInvalidArgument,   // caller misuse (bad option, too large input)
  kCorrupt,           // frame or model bytes are malformed / truncated
  kChecksumMismatch,  // decoded bytes do not match the frame checksum, or model checksum bad
  kModelMismatch,     // frame needs a model that is not available / wrong model
  kUnsupported,       // unknown version / codec id / architecture
  kTooLarge,          // declared size above a limit
  kIo,                // file I/O
  kInternal,          // library bug or allocation failure
};

const char* error_code_name(ErrorCode c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return {}; }
  static Status Error(ErrorCode code, std::string msg) {
    return Status(code == ErrorCode::kOk ? ErrorCode::kInternal : code, std::move(msg));
  }
  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return msg_; }
  std::string to_string() const {
    return ok() ? std::string("ok") : std::string(error_code_name(code_)) + ": " + msg_;
  }

 private:
  Status(ErrorCode code, std::string msg) : code_(code), msg_(std::move(msg)) {}
  ErrorCode code_ = ErrorCode::kOk;
  std::string msg_;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Status s) : v_(std::move(s)) {
    if (std::get<1>(v_).ok()) v_ = Status::Error(ErrorCode::kInternal, "Result built from ok Status");
  }
  bool ok() const { return v_.index() == 0; }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  Status status() const { return ok() ? Status::Ok() : std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

#define DZC_RETURN_IF_ERROR(expr)            \
  do {                                       \
    ::dzfs::codec::Status _dzc_s = (expr);   \
    if (!_dzc_s.ok()) return _dzc_s;         \
  } while (0)

}  // namespace dzfs::codec
