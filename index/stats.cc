// Volume statistics: see stats.h.
#include "index/stats.h"

#include <sys/stat.h>

#include <cstdio>
#include <sstream>

namespace dzfs {

Status recompress_backlog_locked(SqliteDb& db, Backlog& out) {
  Stmt s = db.prepare("SELECT COUNT(*), COALESCE(SUM(raw_len), 0) FROM chunks WHERE tier_done = 0 AND refcount > 0");
  if (s.step()) out = {uint64_t(s.i64(0)), uint64_t(s.i64(1))};
  return s.done_status();
}

Result<Backlog> recompress_backlog(Store& st) {
  std::lock_guard<std::mutex> g(st.index.mu);
  Backlog b;
  DZ_RETURN_IF_ERROR(recompress_backlog_locked(*st.index.db, b));
  return b;
}

Status add_recompress_work(Store& st, uint64_t chunks, uint64_t raw_bytes, int64_t busy_ns) {
  std::lock_guard<std::mutex> g(st.index.mu);
  const std::pair<const char*, int64_t> rows[] = {
      {"recompress_chunks", int64_t(chunks)}, {"recompress_raw_bytes", int64_t(raw_bytes)}, {"recompress_busy_ns", busy_ns}};
  for (auto& [key, add] : rows) {
    Stmt s = st.index.db->prepare(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) "
        "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER)");
    s.bind_text(1, key).bind(2, add);
    DZ_RETURN_IF_ERROR(s.run());
  }
  return Status::Ok();
}

Result<VolumeStats> compute_stats(Store& st) {
  VolumeStats v;
  std::lock_guard<std::mutex> g(st.index.mu);
  SqliteDb& db = *st.index.db;
  {
    Stmt s = db.prepare("SELECT mode & 61440, COUNT(*), SUM(size) FROM inodes WHERE nlink > 0 GROUP BY 1");
    while (s.step()) {
      uint32_t type = uint32_t(s.i64(0));
      uint64_t n = uint64_t(s.i64(1));
      if (type == S_IFREG) { v.files = n; v.logical_bytes = uint64_t(s.i64(2)); }
      else if (type == S_IFDIR) v.dirs = n;
      else if (type == S_IFLNK) v.symlinks = n;
      else v.others += n;
    }
    DZ_RETURN_IF_ERROR(s.done_status());
  }
  {
    Stmt s = db.prepare("SELECT COALESCE(SUM(len), 0) FROM extents");
    if (s.step()) v.referenced_bytes = uint64_t(s.i64(0));
    DZ_RETURN_IF_ERROR(s.done_status());
  }
  {
    Stmt s = db.prepare(
        "SELECT codec, refcount > 0, COUNT(*), SUM(raw_len), SUM(stored_len) + SUM(codec <> ?2) * ?1 "
        "FROM chunks GROUP BY 1, 2");
    // A grouped chunk's share of its group record already counts the record's header.
    s.bind(1, kRecordHeaderSize).bind(2, int(kCodecGroup));
    while (s.step()) {
      if (!s.i64(1)) { v.garbage_chunks += uint64_t(s.i64(2)); continue; }
      std::string c = codec_name(uint8_t(s.i64(0)));
      v.chunks += uint64_t(s.i64(2));
      v.chunks_by_codec[c] += uint64_t(s.i64(2));
      v.raw_by_codec[c] += uint64_t(s.i64(3));
      v.stored_by_codec[c] += uint64_t(s.i64(4));
      v.unique_chunk_bytes += uint64_t(s.i64(3));
      v.stored_bytes += uint64_t(s.i64(4));
    }
    DZ_RETURN_IF_ERROR(s.done_status());
  }
  {
    Stmt s = db.prepare(
        "SELECT model, SUM(raw_len), SUM(stored_len) + SUM(codec <> ?2) * ?1 FROM chunks "
        "WHERE refcount > 0 AND model IS NOT NULL GROUP BY model");
    s.bind(1, kRecordHeaderSize).bind(2, int(kCodecGroup));
    while (s.step()) {
      v.raw_by_model[s.blob(0)] = uint64_t(s.i64(1));
      v.stored_by_model[s.blob(0)] = uint64_t(s.i64(2));
    }
    DZ_RETURN_IF_ERROR(s.done_status());
  }
  {
    Backlog b;
    DZ_RETURN_IF_ERROR(recompress_backlog_locked(db, b));
    v.backlog_chunks = b.chunks;
    v.backlog_raw_bytes = b.raw_bytes;
  }
  {
    Stmt s = db.prepare(
        "SELECT key, CAST(value AS INTEGER) FROM meta WHERE key IN "
        "('recompress_chunks', 'recompress_raw_bytes', 'recompress_busy_ns')");
    while (s.step()) {
      const std::string k = s.blob(0);
      uint64_t& out = k == "recompress_chunks" ? v.recompress_chunks
                      : k == "recompress_raw_bytes" ? v.recompress_raw_bytes : v.recompress_busy_ns;
      out = uint64_t(s.i64(1));
    }
    DZ_RETURN_IF_ERROR(s.done_status());
  }
  for (auto& [id, size] : st.packs.list()) v.pack_bytes += size;
  for (const char* f : {"/index.db", "/index.db-wal", "/index.db.zst"}) {
    struct stat sb {};
    if (::stat((st.dir + f).c_str(), &sb) == 0) v.index_bytes += uint64_t(sb.st_size);
  }
  return v;
}

static std::string human(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double x = double(b);
  int u = 0;
  while (x >= 1024 && u < 4) { x /= 1024; ++u; }
  char buf[64];
  snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", x, units[u]);
  return buf;
}

std::string stats_text(const VolumeStats& s) {
  std::ostringstream o;
  char r[64];
  o << "files:              " << s.files << " (" << s.dirs << " directories, " << s.symlinks
    << " symlinks, " << s.others << " other)\n";
  o << "logical bytes:      " << human(s.logical_bytes) << " (" << s.logical_bytes << ")\n";
  o << "referenced bytes:   " << human(s.referenced_bytes) << " (holes excluded)\n";
  o << "unique chunk bytes: " << human(s.unique_chunk_bytes) << " in " << s.chunks << " chunks\n";
  o << "stored bytes:       " << human(s.stored_bytes) << " (" << s.stored_bytes << ")\n";
  o << "pack files:         " << human(s.pack_bytes) << " (" << s.garbage_chunks << " garbage chunks; dzfs gc reclaims)\n";
  o << "index:              " << human(s.index_bytes) << "\n";
  snprintf(r, sizeof r, "%.3f", s.dedup_ratio());
  o << "dedup ratio:        " << r << "\n";
  snprintf(r, sizeof r, "%.3f", s.compression_ratio());
  o << "compression ratio:  " << r << "\n";
  for (auto& [c, b] : s.stored_by_codec)
    o << "codec " << c << ":" << std::string(c.size() < 12 ? 12 - c.size() : 1, ' ') << s.chunks_by_codec.at(c)
      << " chunks, " << human(s.raw_by_codec.at(c)) << " raw -> " << human(b) << " stored\n";
  for (auto& [m, b] : s.stored_by_model)
    o << "model " << m << ": " << human(s.raw_by_model.at(m)) << " raw -> " << human(b) << " stored\n";
  o << "backlog:            " << s.backlog_chunks << " chunks (" << human(s.backlog_raw_bytes)
    << ") waiting for background recompression\n";
  snprintf(r, sizeof r, "%.2f", s.recompress_mb_per_worker_s());
  o << "recompression work: " << s.recompress_chunks << " chunks, " << human(s.recompress_raw_bytes) << " in "
    << uint64_t(double(s.recompress_busy_ns) / 1e9) << " s of worker time (" << r << " MB/s per worker)\n";
  return o.str();
}

std::string stats_json(const VolumeStats& s) {
  std::ostringstream o;
  char r[64];
  o << "{\"logical_bytes\": " << s.logical_bytes << ", \"referenced_bytes\": " << s.referenced_bytes
    << ", \"unique_chunk_bytes\": " << s.unique_chunk_bytes << ", \"stored_bytes\": " << s.stored_bytes
    << ", \"pack_bytes\": " << s.pack_bytes << ", \"index_bytes\": " << s.index_bytes
    << ", \"chunks\": " << s.chunks << ", \"garbage_chunks\": " << s.garbage_chunks
    << ", \"files\": " << s.files << ", \"dirs\": " << s.dirs << ", \"symlinks\": " << s.symlinks;
  snprintf(r, sizeof r, "%.6f", s.dedup_ratio());
  o << ", \"dedup_ratio\": " << r;
  snprintf(r, sizeof r, "%.6f", s.compression_ratio());
  o << ", \"compression_ratio\": " << r;
  auto obj = [&](const char* name, const std::map<std::string, uint64_t>& m) {
    o << ", \"" << name << "\": {";
    bool first = true;
    for (auto& [k, v] : m) { o << (first ? "" : ", ") << "\"" << k << "\": " << v; first = false; }
    o << "}";
  };
  obj("bytes_by_codec", s.stored_by_codec);
  obj("raw_bytes_by_codec", s.raw_by_codec);
  obj("chunks_by_codec", s.chunks_by_codec);
  obj("stored_bytes_by_model", s.stored_by_model);
  o << ", \"backlog_chunks\": " << s.backlog_chunks << ", \"backlog_raw_bytes\": " << s.backlog_raw_bytes;
  snprintf(r, sizeof r, "%.3f", s.recompress_mb_per_worker_s());
  o << ", \"recompress_chunks\": " << s.recompress_chunks << ", \"recompress_raw_bytes\": " << s.recompress_raw_bytes
    << ", \"recompress_busy_ns\": " << s.recompress_busy_ns << ", \"recompress_mb_per_worker_s\": " << r;
  o << "}\n";
  return o.str();
}

}  // namespace dzfs
