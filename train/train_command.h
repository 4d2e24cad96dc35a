// dzfs train: command-line entry point (used by `dzfs train` and the standalone `dzfs-train`).
//   train --config FILE [--data DIR]... [--valid DIR]... [--out MODEL] [--steps N] [--batch N]
//         [--lr X] [--seed N] [--threads N] [--set KEY=VALUE]...
//   train --eval MODEL [--also MODEL]... --data DIR... [--threads N] [--max-bytes N] [--no-codec] [--null]
//   train split --corpus DIR --out DIR [--held-percent 20]
// args excludes the program / subcommand name ("train").
#pragma once
#include <string>
#include <vector>

namespace dzfs::train {

int run_train_command(const std::vector<std::string>& args);

}  // namespace dzfs::train
