// dzfs-train: standalone front end of `dzfs train` (see train/train_command.h).
#include <string>
#include <vector>

#include "train/train_command.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "train") args.erase(args.begin());
  return dzfs::train::run_train_command(args);
}
