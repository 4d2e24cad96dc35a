#include "codec/util.h"

#include <cerrno>
#include <cstdio>

namespace dzfs::codec {

const char* error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kCorrupt: return "corrupt";
    case ErrorCode::kChecksumMismatch: return "checksum mismatch";
    case ErrorCode::kModelMismatch: return "model mismatch";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kTooLarge: return "too large";
    case ErrorCode::kIo: return "i/o error";
    case ErrorCode::kInternal: return "internal error";
  }
  return "unknown error";
}

Result<std::vector<uint8_t>> read_file(const std::string& path, size_t max_bytes) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::Error(ErrorCode::kIo, "cannot open " + path + ": " + std::strerror(errno));
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    if (out.size() + n > max_bytes) {
      std::fclose(f);
      return Status::Error(ErrorCode::kTooLarge, path + ": file too large");
    }
    out.insert(out.end(), buf, buf + n);
  }
  bool err = std::ferror(f);
  std::fclose(f);
  if (err) return Status::Error(ErrorCode::kIo, "read error on " + path);
  return out;
}

Status write_file(const std::string& path, const std::vector<uint8_t>& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return Status::Error(ErrorCode::kIo, "cannot create " + path + ": " + std::strerror(errno));
  bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return Status::Error(ErrorCode::kIo, "write error on " + path);
  return Status::Ok();
}

}  // namespace dzfs::codec
