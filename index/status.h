// Errors as values: a Status carries an errno-style code (what FUSE replies) and a message (what
// people read). Result<T> is a value or a Status. Nothing in the store throws across an API.
#pragma once
#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace dzfs {

class Status {
 public:
  Status() = default;
  static Status Ok() { return {}; }
  static Status Error(int code, std::string msg) { return Status(code ? code : EIO, std::move(msg)); }
  bool ok() const { return code_ == 0; }
  int code() const { return code_; }
  const std::string& message() const { return msg_; }

 private:
  Status(int code, std::string msg) : code_(code), msg_(std::move(msg)) {}
  int code_ = 0;
  std::string msg_;
};

template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Status s) : v_(std::move(s)) {}
  bool ok() const { return v_.index() == 0; }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }
  Status status() const { return ok() ? Status::Ok() : std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

#define DZ_RETURN_IF_ERROR(expr)          \
  do {                                    \
    ::dzfs::Status _s = (expr);           \
    if (!_s.ok()) return _s;              \
  } while (0)

}  // namespace dzfs
