// The model inbox (STORE/inbox/): how a trained model reaches a volume's index whoever holds it.
// `dzfs train` (or the daemon's own training child) posts a model file and an adoption order; the
// process that holds the store — the mount daemon, or the train command itself when the volume is
// not mounted — applies it: installs the model, sets the active set, commits, then removes the
// order. One path for both cases, so a mounted volume is never written by a second process.
//
// Crash safety: an order is posted as <id>.dzm (fsynced) then <id>.adopt (fsynced, renamed into
// place), so an .adopt file always names a complete model file. Applying is idempotent (install
// ignores a model already present; the active set is written whole), so a crash between the
// commit and the removal of the order just applies it again. A model file with no order older
// than an hour is a leftover of an interrupted post and is removed.
#pragma once
#include <span>
#include <string>
#include <vector>

#include "index/store.h"

namespace dzfs {

struct AdoptionOrder {
  std::string model_id;                   // hex content id of the posted model file
  std::string parent;                     // the model it was fine-tuned from
  std::string summary;                    // training and evaluation summary for `dzfs models`
  std::vector<std::string> active;        // the new active set, primary first (must include model_id)
  bool migrate = false;                   // re-encode chunks under models that left the active set
};

// Writes the order into STORE/inbox. Needs no lock on the store.
Status post_adoption(const std::string& store_dir, std::span<const uint8_t> model_file, const AdoptionOrder& order);

// Applies every pending order (oldest first) and commits; returns how many were applied. An
// order that cannot apply (damaged model, unknown active id) is logged and moved to
// STORE/inbox/rejected/ so that it is not retried forever.
Result<int> apply_adoptions(Store& store);

}  // namespace dzfs
