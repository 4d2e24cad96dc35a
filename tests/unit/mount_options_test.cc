// Mount option parsing: `dzfs mount STORE MNT [-f] [-d] [-o ...]` and mount.fuse3's form.
#include "fs/mount_options.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace dzfs {
namespace {

Result<MountOptions> parse(std::vector<std::string> args) { return parse_mount_args(args); }

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

TEST(MountOptionsTest, Defaults) {
  auto r = parse({"/store", "/mnt"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->store, "/store");
  EXPECT_EQ(r->mountpoint, "/mnt");
  EXPECT_FALSE(r->foreground);
  EXPECT_FALSE(r->debug);
  EXPECT_EQ(r->commit_secs, 5);
  EXPECT_EQ(r->cache_mb, 256u);
  EXPECT_EQ(r->dirty_mb, 64u);
  EXPECT_TRUE(r->writeback);
  EXPECT_EQ(r->threads, 16);
  EXPECT_EQ(r->gc_secs, 300);
  EXPECT_EQ(r->gc_garbage_mb, 64u);
  EXPECT_TRUE(r->fuse_opts.empty());
}

TEST(MountOptionsTest, GoodOptions) {
  auto r = parse({"-o", "commit_secs=10,cache_mb=512,dirty_mb=8,threads=4,writeback=0,gc_secs=0,allow_other,ro,"
                        "max_read=131072,default_permissions,noatime",
                  "/s", "/m"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->commit_secs, 10);
  EXPECT_EQ(r->cache_mb, 512u);
  EXPECT_EQ(r->dirty_mb, 8u);
  EXPECT_EQ(r->threads, 4);
  EXPECT_FALSE(r->writeback);
  EXPECT_EQ(r->gc_secs, 0);
  EXPECT_TRUE(has(r->fuse_opts, "allow_other"));
  EXPECT_TRUE(has(r->fuse_opts, "ro"));
  EXPECT_TRUE(has(r->fuse_opts, "default_permissions"));
  EXPECT_TRUE(has(r->fuse_opts, "noatime"));
  EXPECT_TRUE(has(r->fuse_opts, "max_read=131072"));
  EXPECT_EQ(r->fuse_opts.size(), 5u);
  EXPECT_EQ(r->store, "/s");
  EXPECT_EQ(r->mountpoint, "/m");
  // Range ends are accepted.
  MountOptions o;
  EXPECT_TRUE(parse_mount_option_list("commit_secs=1,cache_mb=1,dirty_mb=4,threads=1,writeback=1,gc_secs=86400", o).ok());
  EXPECT_TRUE(parse_mount_option_list("commit_secs=3600,threads=256,dirty_mb=65536,max_read=4096", o).ok());
  EXPECT_EQ(o.commit_secs, 3600);
  EXPECT_EQ(o.threads, 256);
  EXPECT_EQ(o.gc_secs, 86400);
  EXPECT_TRUE(parse_mount_option_list("gc_garbage_mb=1", o).ok());
  EXPECT_EQ(o.gc_garbage_mb, 1u);
  EXPECT_EQ(parse_mount_option_list("gc_garbage_mb=0", o).code(), EINVAL);
}

TEST(MountOptionsTest, UnknownOptionIsEinvalNamingIt) {
  MountOptions o;
  Status s = parse_mount_option_list("allow_other,frobnicate=3,ro", o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), EINVAL);
  EXPECT_NE(s.message().find("frobnicate"), std::string::npos) << s.message();
  auto r = parse({"/s", "/m", "-o", "bogus"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), EINVAL);
  EXPECT_NE(r.status().message().find("bogus"), std::string::npos) << r.status().message();
  // A known flag given a value is not the flag.
  EXPECT_EQ(parse_mount_option_list("allow_other=1", o).code(), EINVAL);
  // Unknown dash arguments too.
  auto r2 = parse({"/s", "/m", "-x"});
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), EINVAL);
  EXPECT_NE(r2.status().message().find("-x"), std::string::npos);
}

TEST(MountOptionsTest, BadNumbersAreEinval) {
  for (const char* bad : {"commit_secs=0", "commit_secs=3601", "commit_secs=", "commit_secs", "commit_secs=abc",
                          "commit_secs=5s", "commit_secs=-1", "commit_secs= 5", "cache_mb=0", "cache_mb=99999999999999999999",
                          "dirty_mb=3", "threads=0", "threads=257", "writeback=2", "writeback=yes", "gc_secs=-5",
                          "gc_secs=86401", "max_read=100", "max_read=", "threads=0x10"}) {
    MountOptions o;
    Status s = parse_mount_option_list(bad, o);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.code(), EINVAL) << bad;
    std::string key = std::string(bad).substr(0, std::string(bad).find('='));
    EXPECT_NE(s.message().find(key), std::string::npos) << bad << ": " << s.message();
    auto r = parse({"/s", "/m", "-o", bad});
    EXPECT_FALSE(r.ok()) << bad;
  }
  // A failed option leaves the defaults of what it named.
  MountOptions o;
  EXPECT_FALSE(parse_mount_option_list("threads=0", o).ok());
  EXPECT_EQ(o.threads, 16);
}

TEST(MountOptionsTest, FstabNoiseIgnored) {
  auto r = parse({"/s", "/m", "-o",
                  "defaults,noauto,auto,_netdev,nofail,user,users,nouser,owner,group,x-systemd.automount,"
                  "x-systemd.requires=/srv,x-gvfs-hide,comment=systemd.automount,,rw,fsname=foo,subtype=dzfs"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->fuse_opts, std::vector<std::string>{"rw"}) << "only rw reaches libfuse";
  EXPECT_EQ(r->commit_secs, 5);
}

TEST(MountOptionsTest, RepeatedDashOAndAttachedForm) {
  auto r = parse({"-o", "commit_secs=2", "/s", "-ocache_mb=64", "/m", "-o", "commit_secs=9,allow_other", "-o", "nodev"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->commit_secs, 9) << "the last -o wins";
  EXPECT_EQ(r->cache_mb, 64u);
  EXPECT_TRUE(has(r->fuse_opts, "allow_other"));
  EXPECT_TRUE(has(r->fuse_opts, "nodev"));
  EXPECT_EQ(r->store, "/s");
  EXPECT_EQ(r->mountpoint, "/m");
  auto bad = parse({"/s", "/m", "-o"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), EINVAL);
}

TEST(MountOptionsTest, ForegroundAndDebugFlags) {
  auto f = parse({"-f", "/s", "/m"});
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->foreground);
  EXPECT_FALSE(f->debug);
  auto d = parse({"/s", "/m", "-d"});
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->foreground) << "-d implies -f";
  EXPECT_TRUE(d->debug);
  auto od = parse({"/s", "/m", "-o", "debug"});
  ASSERT_TRUE(od.ok()) << od.status().message();
  EXPECT_TRUE(od->debug);
}

TEST(MountOptionsTest, WrongPositionalCount) {
  for (auto args : std::vector<std::vector<std::string>>{{}, {"/s"}, {"/s", "/m", "/extra"}, {"-f", "/s"}, {"-o", "ro", "/s"}}) {
    auto r = parse(args);
    EXPECT_FALSE(r.ok()) << args.size() << " args";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), EINVAL);
      EXPECT_NE(r.status().message().find("usage"), std::string::npos) << r.status().message();
    }
  }
}

TEST(MountOptionsTest, RecompressionOptions) {
  auto r = parse({"/s", "/m", "-o", "codec=zstd,workers=3,settle_secs=60"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->neural);
  EXPECT_EQ(r->workers, 3);
  EXPECT_EQ(r->settle_secs, 60);
  auto d = parse({"/s", "/m"});
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->neural);
  EXPECT_EQ(d->workers, -1);
  for (const char* v : {"codec=auto", "codec=neural"}) {
    MountOptions o;
    o.neural = false;
    ASSERT_TRUE(parse_mount_option_list(v, o).ok()) << v;
    EXPECT_TRUE(o.neural) << v;
  }
  MountOptions o;
  Status s = parse_mount_option_list("codec=lz4", o);
  EXPECT_EQ(s.code(), EINVAL);
  EXPECT_NE(s.message().find("lz4"), std::string::npos) << s.message();
  EXPECT_EQ(parse_mount_option_list("workers=257", o).code(), EINVAL);
  EXPECT_EQ(parse_mount_option_list("settle_secs=-1", o).code(), EINVAL);
}

TEST(MountOptionsTest, GpuAndAutotrainOptions) {
  auto d = parse({"/s", "/m"});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->gpu, MountOptions::Gpu::kAuto);
  EXPECT_EQ(d->autotrain_mb, 0u);
  auto r = parse({"/s", "/m", "-o", "gpu=off,autotrain_mb=512"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->gpu, MountOptions::Gpu::kOff);
  EXPECT_EQ(r->autotrain_mb, 512u);
  MountOptions o;
  ASSERT_TRUE(parse_mount_option_list("gpu=on", o).ok());
  EXPECT_EQ(o.gpu, MountOptions::Gpu::kOn);
  Status s = parse_mount_option_list("gpu=yes", o);
  EXPECT_EQ(s.code(), EINVAL);
  EXPECT_NE(s.message().find("gpu"), std::string::npos) << s.message();
  EXPECT_EQ(parse_mount_option_list("autotrain_mb=-5", o).code(), EINVAL);
  EXPECT_EQ(parse_mount_option_list("autotrain_mb", o).code(), EINVAL);
}

TEST(MountOptionsTest, MountFuse3Form) {
  // mount.fuse3 runs `dzfs STORE MNT -o rw,dev,suid,...` with the fstab options.
  auto r = parse({"/backup/store", "/mnt/backup", "-o", "rw,nodev,nosuid,noexec,relatime,_netdev,x-systemd.automount"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->store, "/backup/store");
  EXPECT_EQ(r->mountpoint, "/mnt/backup");
  // relatime and friends: libfuse 3.14 refuses them, so they are dropped (FUSE mounts are relatime).
  EXPECT_EQ(r->fuse_opts, (std::vector<std::string>{"rw", "nodev", "nosuid", "noexec"}));
  MountOptions o;
  ASSERT_TRUE(parse_mount_option_list("strictatime,lazytime,nodiratime,iversion", o).ok());
  EXPECT_TRUE(o.fuse_opts.empty());
  EXPECT_EQ(parse_mount_option_list("nosymfollow", o).code(), EINVAL);
}

}  // namespace
}  // namespace dzfs
