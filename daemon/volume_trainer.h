// Per-volume training (`dzfs train STORE|MOUNTPOINT`, and the daemon's autotrain): the volume
// learns a model of its own data and adopts it only when it measurably beats the models it has.
//
//   1. sample: live chunks in a fixed pseudo-random order (Knuth multiplicative hash of the chunk
//      id), decoded and written one file per chunk into STORE/train.tmp/{train,heldback}; every
//      8th sampled chunk is held back and never trained on. The store is opened read-only, so
//      this works beside a mount.
//   2. train: dzfs-train (a separate program, so no dzfs process loads libtorch) fine-tunes the
//      active model that codes the most of the volume (by raw bytes; else the primary) on the
//      sample, at low priority; its config is written from that model's shape.
//   3. evaluate: every held-back chunk is encoded with each active model and with the candidate;
//      before = sum of the best active frame per chunk, after = the same with the candidate
//      allowed. Adopt only if after <= before * (1 - margin).
//   4. adopt: through the model inbox (model_inbox.h): the candidate becomes the primary model,
//      followed by the old active models that still win a held-back chunk. Chunks keep the model
//      they name; --migrate re-encodes those under models that left the active set.
// Nothing here writes the index directly, so a crash at any step loses nothing: at worst a
// stale STORE/train.tmp (removed by the next run) or an order the holder applies later.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "index/status.h"

namespace dzfs {

struct VolumeTrainOptions {
  std::string trainer;                    // dzfs-train executable; empty = find_trainer()
  uint64_t sample_bytes = 32ull << 20;    // training sample (raw bytes of chunks)
  uint64_t heldback_bytes = 4ull << 20;   // evaluation sample, never trained on
  int steps = 0;                          // 0: two passes over the sample, 100..1000 steps
  int batch = 8192;                       // byte positions per step
  double lr = 0.003;                      // fine-tuning rate (from-scratch runs use ~0.03)
  double margin = 0.01;                   // required shrink of the held-back sample
  int threads = 2;                        // evaluation threads
  size_t max_active = 4;                  // active models kept after adoption, candidate first
  bool migrate = false;                   // re-encode chunks of models that leave the active set
  bool wait = true;                       // on a mounted volume, wait until the daemon adopted it
  bool quiet = false;                     // trainer output to STORE/train.tmp/train.log
  bool idle_priority = false;             // the trainer at SCHED_IDLE (the daemon's autotrain)
  std::function<void(const std::string&)> say;  // progress messages (may be empty)
};

struct TrainingOutcome {
  bool adopted = false;
  std::string model_id, parent, summary;
  uint64_t train_chunks = 0, train_bytes = 0, held_chunks = 0, held_bytes = 0;
  uint64_t before = 0, after = 0;  // held-back frame bytes: active models, with the candidate
};

// dzfs-train beside the running binary, else on PATH; empty if neither exists.
std::string find_trainer();

Result<TrainingOutcome> train_volume(const std::string& store_dir, const VolumeTrainOptions& opts);

}  // namespace dzfs
