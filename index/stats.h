// Volume statistics for `dzfs stats`: what was written, what is unique, what it costs on disk.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "index/store.h"

namespace dzfs {

struct VolumeStats {
  uint64_t logical_bytes = 0;       // sum of regular files' sizes
  uint64_t referenced_bytes = 0;    // bytes of file data held in chunks (holes excluded)
  uint64_t unique_chunk_bytes = 0;  // raw bytes of referenced chunks, each counted once
  uint64_t stored_bytes = 0;        // pack bytes of referenced chunks' records
  uint64_t pack_bytes = 0;          // size of all pack files
  uint64_t index_bytes = 0;         // index.db + WAL, or index.db.zst at rest
  uint64_t chunks = 0, garbage_chunks = 0;
  uint64_t files = 0, dirs = 0, symlinks = 0, others = 0;
  std::map<std::string, uint64_t> stored_by_codec, raw_by_codec, chunks_by_codec;
  std::map<std::string, uint64_t> stored_by_model, raw_by_model;  // neural chunks per model id
  uint64_t backlog_chunks = 0, backlog_raw_bytes = 0;  // not yet tried by recompression
  // Cumulative work of background recompression (all mounts and `dzfs compress` runs).
  uint64_t recompress_chunks = 0, recompress_raw_bytes = 0, recompress_busy_ns = 0;
  double recompress_mb_per_worker_s() const {
    return recompress_busy_ns ? double(recompress_raw_bytes) / 1e6 / (double(recompress_busy_ns) / 1e9) : 0.0;
  }
  double dedup_ratio() const { return unique_chunk_bytes ? double(referenced_bytes) / unique_chunk_bytes : 1.0; }
  double compression_ratio() const { return stored_bytes ? double(unique_chunk_bytes) / stored_bytes : 1.0; }
};

struct Backlog {
  uint64_t chunks = 0, raw_bytes = 0;  // live chunks background recompression has not tried
};
Result<Backlog> recompress_backlog(Store& store);
Status recompress_backlog_locked(SqliteDb& db, Backlog& out);  // caller holds IndexDb::mu

// Adds one recompression attempt to the cumulative counters (meta rows); part of the next commit.
Status add_recompress_work(Store& store, uint64_t chunks, uint64_t raw_bytes, int64_t busy_ns);

Result<VolumeStats> compute_stats(Store& store);
std::string stats_text(const VolumeStats& s);
std::string stats_json(const VolumeStats& s);

}  // namespace dzfs
