// Model inbox: see model_inbox.h.
#include "daemon/model_inbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "codec/model.h"
#include "daemon/recompressor.h"
#include "index/durable_file.h"
#include "index/log.h"
#include "index/model_registry.h"

namespace dzfs {

static std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

Status post_adoption(const std::string& store_dir, std::span<const uint8_t> model_file, const AdoptionOrder& o) {
  const std::string dir = store_dir + "/inbox";
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::Error(errno, "cannot create " + dir + ": " + strerror(errno));
  if (std::find(o.active.begin(), o.active.end(), o.model_id) == o.active.end())
    return Status::Error(EINVAL, "adoption order: the active set must include the posted model");
  DZ_RETURN_IF_ERROR(write_file_durably(dir, o.model_id + ".dzm", model_file, 0600));
  std::string active;
  for (auto& id : o.active) active += (active.empty() ? "" : ",") + id;
  const std::string text = "parent=" + o.parent + "\nactive=" + active + "\nmigrate=" + (o.migrate ? "1" : "0") +
                           "\nsummary=" + one_line(o.summary) + "\n";
  return write_file_durably(dir, o.model_id + ".adopt",
                            {reinterpret_cast<const uint8_t*>(text.data()), text.size()}, 0600);
}

namespace {

// Model ids are 32 hex digits: a name that is not one is never opened (no path tricks).
bool is_model_id(const std::string& s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) { return isxdigit(uint8_t(c)) != 0; });
}

Result<AdoptionOrder> read_order(const std::string& path, const std::string& id) {
  std::ifstream f(path);
  if (!f) return Status::Error(errno, "cannot read " + path);
  AdoptionOrder o;
  o.model_id = id;
  std::string line;
  while (std::getline(f, line)) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string k = line.substr(0, eq), v = line.substr(eq + 1);
    if (k == "parent") o.parent = v;
    else if (k == "summary") o.summary = v;
    else if (k == "migrate") o.migrate = v == "1";
    else if (k == "active") {
      std::stringstream ss(v);
      for (std::string x; std::getline(ss, x, ',');)
        if (!x.empty()) o.active.push_back(x);
    }
  }
  for (auto& a : o.active)
    if (!is_model_id(a)) return Status::Error(EINVAL, path + ": '" + a + "' is not a model id");
  if (std::find(o.active.begin(), o.active.end(), id) == o.active.end())
    return Status::Error(EINVAL, path + ": the active set does not include the posted model");
  return o;
}

Result<std::vector<uint8_t>> slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::Error(ENOENT, "cannot read " + path);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

Status apply_one(Store& st, const std::string& dir, const std::string& id) {
  auto order = read_order(dir + "/" + id + ".adopt", id);
  if (!order.ok()) return order.status();
  auto file = slurp(dir + "/" + id + ".dzm");
  if (!file.ok()) return file.status();
  auto got = st.models->install(*file, order->parent, order->summary, ModelRegistry::Activate::kNo);
  if (!got.ok()) return got.status();
  if (*got != id) return Status::Error(EINVAL, "inbox model " + id + " has content id " + *got);
  DZ_RETURN_IF_ERROR(st.models->set_active(order->active));
  if (order->migrate) DZ_RETURN_IF_ERROR(queue_model_migration(st));
  return st.commit();
}

}  // namespace

Result<int> apply_adoptions(Store& st) {
  const std::string dir = st.dir + "/inbox";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  std::vector<std::pair<time_t, std::string>> orders;
  std::vector<std::string> models;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    struct stat sb {};
    if (n.size() != 32 + 6 && n.size() != 32 + 4) continue;
    if (::stat((dir + "/" + n).c_str(), &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
    const std::string id = n.substr(0, 32), ext = n.substr(32);
    if (!is_model_id(id)) continue;
    if (ext == ".adopt") orders.emplace_back(sb.st_mtime, id);
    else if (ext == ".dzm" && time(nullptr) - sb.st_mtime > 3600) models.push_back(id);
  }
  ::closedir(d);
  std::sort(orders.begin(), orders.end());
  int applied = 0;
  for (auto& [t, id] : orders) {
    Status s = apply_one(st, dir, id);
    if (s.ok()) {
      ++applied;
      log_info("adopted model " + id);
      ::unlink((dir + "/" + id + ".adopt").c_str());
      ::unlink((dir + "/" + id + ".dzm").c_str());
      continue;
    }
    log_error("model inbox: cannot adopt " + id + ": " + s.message() + "; moved to " + dir + "/rejected/");
    ::mkdir((dir + "/rejected").c_str(), 0700);
    for (const char* ext : {".adopt", ".dzm"})
      ::rename((dir + "/" + id + ext).c_str(), (dir + "/rejected/" + id + ext).c_str());
  }
  for (auto& id : models)  // leftovers of interrupted posts (no order names them)
    if (::access((dir + "/" + id + ".adopt").c_str(), F_OK) != 0) ::unlink((dir + "/" + id + ".dzm").c_str());
  return applied;
}

}  // namespace dzfs
