#!/usr/bin/env bash
# Packaging test: build the dzfs .deb with cpack from the ctest build directory, install it on this
# machine with dpkg -i, and use it the Linux way:
#   - the package: name, Depends (fuse3 and the shared libraries), files (binary, man page, unit)
#   - man -w dzfs finds the installed man page (when man-db is installed)
#   - systemd-analyze verify accepts the installed dzfs@.service (when systemd-analyze works here)
#   - mount -t fuse.dzfs STORE MNT -o ... (mount(8) -> mount.fuse3 -> /usr/bin/dzfs from its fixed
#     PATH), /proc/mounts and findmnt show type fuse.dzfs, rsync -aHAX a tree in, read it back
#     (rsync --checksum dry run, diff -r, hard links), plain umount, fsck clean
#   - an fstab line with fstab-only options (mount -T FILE MNT), ro honoured
#   - the unit's ExecStartPre/ExecStart/ExecStop command lines, run as systemd would run them
#   - the library packages libdzcodec0, libdzcodec-dev and python3-dzcodec (issue 19): fields and
#     files; a C program built against the installed library with `pkg-config --cflags --libs
#     dzcodec` round-trips data, its .dzc decodes with the installed dzfs-codec, and the system
#     python3 imports dzcodec and decodes it too
#   - dpkg -r / -P removes everything it installed
# Installing on the machine is deliberate: mount.fuse3 runs `dzfs` from a fixed PATH
# (/usr/local/sbin:...:/bin), so only an installed dzfs exercises the real mount path. The test
# skips (77) where a dzfs package or an unpackaged /usr/bin/dzfs is already there, so that it
# never replaces what it did not install, and it removes the package on every exit (trap).
#
# Environment (set by tests/packaging/CMakeLists.txt): DZFS (the built binary), DZFS_BUILD_DIR,
# CMAKE_COMMAND, CPACK_COMMAND.
. "$(dirname "$0")/../integration/lib.sh"
it_init deb_install 240

BUILD=${DZFS_BUILD_DIR:?DZFS_BUILD_DIR must name the cmake build directory}
CMAKE=${CMAKE_COMMAND:-cmake}
CPACK=${CPACK_COMMAND:-cpack}
for t in dpkg dpkg-deb rsync findmnt mount umount diff "$CMAKE" "$CPACK"; do
  command -v "$t" >/dev/null 2>&1 || skip "no $t"
done
[ -x /sbin/mount.fuse ] || [ -x /usr/sbin/mount.fuse ] || skip "no mount.fuse (package fuse3)"
command -v dpkg-shlibdeps >/dev/null 2>&1 || skip "no dpkg-shlibdeps (package dpkg-dev; CPACK_DEBIAN_PACKAGE_SHLIBDEPS needs it)"
[ -f "$BUILD/CPackConfig.cmake" ] || fail "$BUILD/CPackConfig.cmake missing: configure the build first"
# The packages this test installs (removed in this order).
PKGS="python3-dzcodec libdzcodec-dev libdzcodec0 dzfs"
# True when dpkg has one of PKGS (or the one named) in any state but not-installed.
pkg_known() {
  local st p
  for p in ${1:-$PKGS}; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) || continue
    [ -n "$st" ] && [ "$st" != not-installed ] && return 0
  done
  return 1
}
if pkg_known; then
  skip "a dzfs or libdzcodec package is already installed here; not replacing it"
fi
for f in /usr/bin/dzfs /usr/bin/dzfs-codec /usr/lib/libdzcodec.so.0 /usr/include/dzcodec.h; do
  [ ! -e "$f" ] || skip "$f exists (not from this test); not overwriting it"
done

INSTALLED=""
# Cleanup, before lib.sh's own: unmount what the test mounted (with the installed dzfs while it
# is there), wait for the daemons, then remove and purge the package.
_pkg_cleanup() {
  local rc=$?
  trap - ERR
  set +e
  if [ -n "$IT_TMP" ] && [ -f "$IT_TMP/.mounts" ]; then
    local mp
    while read -r mp; do [ -n "$mp" ] && _it_unmount_one "$mp"; done < <(tac "$IT_TMP/.mounts")
    local pid
    for pid in $(dzfs_pids_for_tmp); do
      for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && { log "cleanup: killing dzfs pid $pid"; kill -KILL "$pid"; }
    done
  fi
  if [ -n "$INSTALLED" ]; then
    log "cleanup: dpkg -r/-P $PKGS"
    # shellcheck disable=SC2086
    timeout -k 5 120 dpkg -r $PKGS >"$IT_TMP/dpkg-r.log" 2>&1 || { cat "$IT_TMP/dpkg-r.log" >&2; [ "$rc" -ne 0 ] || rc=1; }
    # shellcheck disable=SC2086
    timeout -k 5 120 dpkg -P $PKGS >>"$IT_TMP/dpkg-r.log" 2>&1 || { cat "$IT_TMP/dpkg-r.log" >&2; [ "$rc" -ne 0 ] || rc=1; }
    if pkg_known; then
      printf 'FAIL: deb_install: a package is still known to dpkg after dpkg -r/-P\n' >&2
      rc=1
    else
      rm -f "$MARKER"
    fi
  fi
  DZFS=$BUILT_DZFS  # lib.sh's cleanup may still need a dzfs binary
  (exit "$rc")
  _it_cleanup
}
BUILT_DZFS=$DZFS
trap _pkg_cleanup EXIT

# The guard: bash runs the TERM trap of lib.sh's watchdog only once the foreground command ends,
# and the watchdog SIGKILLs the test 15 s later. So at GUARD_SECS (before the watchdog's budget)
# the guard ends the test's foreground children, letting the EXIT trap clean up; and should the
# test die anyway with the package still installed (the marker file), the guard unmounts,
# removes and purges it itself.
GUARD_SECS=225
MARKER=$IT_TMP.pkg-installed
_pkg_guard() {
  local main=$1 t=0 p ppid rest
  trap - EXIT ERR INT TERM
  while kill -0 "$main" 2>/dev/null; do
    if [ "$t" -eq "$GUARD_SECS" ]; then
      printf 'deb_install guard: %ss passed, ending the test'\''s foreground commands\n' "$t" >&2
      for p in /proc/[0-9]*; do
        rest=$(cat "$p/stat" 2>/dev/null) || continue
        rest=${rest##*) }; ppid=$(cut -d' ' -f2 <<<"$rest")
        [ "$ppid" = "$main" ] || continue
        [ "${p#/proc/}" = "$BASHPID" ] || [ "${p#/proc/}" = "$IT_WATCHDOG" ] && continue
        kill -TERM "${p#/proc/}" 2>/dev/null
      done
    fi
    sleep 1
    t=$((t + 1))
  done
  [ -e "$MARKER" ] || exit 0
  printf 'deb_install guard: the test died with dzfs installed; unmounting and removing it\n' >&2
  local mp pid
  while read -r mp; do
    [ -n "$mp" ] && grep -qF " $mp " /proc/self/mountinfo && { _it_abort_conn "$mp"; fusermount3 -uz "$mp" 2>/dev/null; }
  done < <(tac "$IT_TMP/.mounts" 2>/dev/null)
  for pid in $(dzfs_pids_for_tmp); do kill -KILL "$pid" 2>/dev/null; done
  # shellcheck disable=SC2086
  timeout -k 5 60 dpkg -r $PKGS >/dev/null 2>&1
  # shellcheck disable=SC2086
  timeout -k 5 60 dpkg -P $PKGS >/dev/null 2>&1
  rm -f "$MARKER"
  # lib.sh's watchdog and its temporary directory outlived the test too.
  [ -s "$IT_TMP/.wdsleep" ] && kill "$(cat "$IT_TMP/.wdsleep")" 2>/dev/null
  kill "$IT_WATCHDOG" 2>/dev/null
  grep -qF " $IT_TMP/" /proc/self/mountinfo || rm -rf --one-file-system "$IT_TMP"
}
_pkg_guard $$ </dev/null >/dev/null &

# ---------------------------------------------------------------- build the package
log "building dzfs, dzfs-codec and libdzcodec in $BUILD (no-op when up to date)"
run_to 600 "$CMAKE" --build "$BUILD" --target dzfs dzfs-codec dzcodec >"$IT_TMP/build.log" 2>&1 ||
  fail "cmake --build $BUILD failed: $(tail -n 20 "$IT_TMP/build.log")"
mkdir -p "$IT_TMP/pkg"
log "cpack -G DEB (components dzfs, libdzcodec, libdzcodecdev, pydzcodec) into $IT_TMP/pkg"
(cd "$IT_TMP/pkg" && run_to 180 "$CPACK" -G DEB --config "$BUILD/CPackConfig.cmake" \
    -D "CPACK_COMPONENTS_ALL=dzfs;libdzcodec;libdzcodecdev;pydzcodec" -D CPACK_PACKAGE_DIRECTORY="$IT_TMP/pkg") >"$IT_TMP/cpack.log" 2>&1 ||
  fail "cpack failed: $(tail -n 30 "$IT_TMP/cpack.log")"
debs=("$IT_TMP"/pkg/dzfs_*.deb)
[ "${#debs[@]}" -eq 1 ] || fail "expected one dzfs_*.deb from cpack, got: ${debs[*]:-none} ($(tail -n 5 "$IT_TMP/cpack.log"))"
DEB=${debs[0]}
log "package: $(basename "$DEB"), $(stat -c %s "$DEB") bytes"

# ---------------------------------------------------------------- what the package says
[ "$(dpkg-deb -f "$DEB" Package)" = dzfs ] || fail "Package field is '$(dpkg-deb -f "$DEB" Package)', not dzfs"
depends=$(dpkg-deb -f "$DEB" Depends)
log "Depends: $depends"
for d in fuse3 libfuse3-3 libsqlite3-0 libxxhash0 libzstd1 libc6; do
  grep -Eq "(^|, )$d( |,|$)" <<<"$depends" || fail "Depends lacks $d: $depends"
done
if grep -q libtorch <<<"$depends"; then fail "the dzfs package must not depend on libtorch: $depends"; fi
contents=$(dpkg-deb -c "$DEB" | awk '{print $6}')
for f in ./usr/bin/dzfs ./usr/bin/dzfs-codec ./usr/share/man/man8/dzfs.8.gz ./usr/lib/systemd/system/dzfs@.service \
         ./usr/share/doc/dzfs/README.md; do
  grep -qxF "$f" <<<"$contents" || fail "$f is not in the package; it holds:
$contents"
done
if grep -q 'dzfs-train' <<<"$contents"; then fail "dzfs-train belongs in its own package"; fi
if grep -q 'dzcodec' <<<"$(dpkg-deb -f "$DEB" Depends)"; then fail "dzfs must not depend on the library packages (dzfs-codec links the API statically)"; fi

# The library packages: one .deb each, their fields and files.
libdebs=()
for p in libdzcodec0 libdzcodec-dev python3-dzcodec; do
  d=("$IT_TMP"/pkg/"${p}"_*.deb)
  [ "${#d[@]}" -eq 1 ] && [ -f "${d[0]}" ] || fail "expected one ${p}_*.deb from cpack, got: ${d[*]:-none}"
  [ "$(dpkg-deb -f "${d[0]}" Package)" = "$p" ] || fail "${d[0]}: Package field is '$(dpkg-deb -f "${d[0]}" Package)'"
  libdebs+=("${d[0]}")
done
lib_deps=$(dpkg-deb -f "${libdebs[0]}" Depends)
for d in libzstd1 libxxhash0 libstdc++6 libc6; do
  [[ ", $lib_deps," == *", $d "* || ", $lib_deps," == *", $d,"* ]] || fail "libdzcodec0 Depends lacks $d: $lib_deps"
done
grep -q "libdzcodec0 (= " <<<"$(dpkg-deb -f "${libdebs[1]}" Depends)" || fail "libdzcodec-dev must depend on the same libdzcodec0"
grep -q "libdzcodec0" <<<"$(dpkg-deb -f "${libdebs[2]}" Depends)" || fail "python3-dzcodec must depend on libdzcodec0"
for spec in "0:./usr/lib/libdzcodec.so.0" "1:./usr/include/dzcodec.h" "1:./usr/lib/libdzcodec.so" "1:./usr/lib/pkgconfig/dzcodec.pc" \
            "2:./usr/lib/python3/dist-packages/dzcodec/__init__.py"; do
  i=${spec%%:*} f=${spec#*:}
  dpkg-deb -c "${libdebs[$i]}" | awk '{print $6}' | grep -qxF "$f" || fail "$f is not in $(basename "${libdebs[$i]}")"
done
dpkg-deb -I "${libdebs[0]}" shlibs 2>/dev/null | grep -q '^libdzcodec 0 libdzcodec0' || fail "libdzcodec0 has no shlibs entry"

# ---------------------------------------------------------------- install
log "dpkg -i $(basename "$DEB") ${libdebs[*]##*/}"
INSTALLED=1
: >"$MARKER"
run_to 180 dpkg -i "$DEB" "${libdebs[@]}" >"$IT_TMP/dpkg-i.log" 2>&1 || fail "dpkg -i failed: $(cat "$IT_TMP/dpkg-i.log")"
dpkg-query -W -f='${Status}' dzfs | grep -qx 'install ok installed' ||
  fail "dpkg status of dzfs after dpkg -i: $(dpkg-query -W -f='${Status}' dzfs)"
[ -x /usr/bin/dzfs ] || fail "/usr/bin/dzfs is not there after dpkg -i"
DZFS=/usr/bin/dzfs
export DZFS
# What mount.fuse3 finds on the PATH mount(8) gives its helpers must be the packaged binary.
found=$(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin sh -c 'command -v dzfs')
[ "$found" = /usr/bin/dzfs ] || fail "mount.fuse3's PATH finds '$found', not /usr/bin/dzfs"
ver=$("$DZFS" --version) || fail "dzfs --version failed"
log "installed: $ver"

if command -v man >/dev/null 2>&1 && dpkg-query -W -f='${Status}' man-db 2>/dev/null | grep -q 'ok installed'; then
  if grep -qs 'path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
    log "man check skipped: dpkg excludes /usr/share/man on this machine"
  else
    page=$(man -w dzfs 2>&1) || fail "man -w dzfs did not find the installed man page: $page"
    [ "$page" = /usr/share/man/man8/dzfs.8.gz ] || fail "man -w dzfs found '$page', not /usr/share/man/man8/dzfs.8.gz"
    text=$(MANWIDTH=100 man 8 dzfs 2>"$IT_TMP/man.err" | col -b) || fail "man 8 dzfs failed: $(cat "$IT_TMP/man.err")"
    for want in "MOUNT OPTIONS" "EXIT STATUS" "fuse.dzfs" "commit_secs=" "dzfs@.service"; do
      grep -qF -- "$want" <<<"$text" || fail "the rendered man page lacks '$want'"
    done
    log "man -w dzfs: $page"
  fi
else
  log "man check skipped: man-db is not installed"
fi

# systemd-analyze verify needs an instance name; it also checks that ExecStart's program exists
# and (--man=yes) that the Documentation= man page is installed. Only where it works at all.
if command -v systemd-analyze >/dev/null 2>&1; then
  mkdir -p "$IT_TMP/units"
  printf '[Service]\nExecStart=/bin/true\n' >"$IT_TMP/units/dzfs-probe.service"
  if systemd-analyze verify --man=no "$IT_TMP/units/dzfs-probe.service" >/dev/null 2>&1; then
    cp /usr/lib/systemd/system/dzfs@.service "$IT_TMP/units/dzfs@mnt-backup.service"
    out=$(systemd-analyze verify "$IT_TMP/units/dzfs@mnt-backup.service" 2>&1) ||
      fail "systemd-analyze verify dzfs@mnt-backup.service: $out"
    [ -z "$out" ] || fail "systemd-analyze verify printed warnings: $out"
    log "systemd-analyze verify: clean"
  else
    log "systemd-analyze verify skipped: it does not work on this machine"
  fi
fi

# ---------------------------------------------------------------- the library, as a user links it
# A C program built with pkg-config against the installed libdzcodec-dev: it compresses text with
# the one-shot API, checks the round trip, and writes the .dzc, which the installed dzfs-codec and
# the system python3 (python3-dzcodec) must decode to the same bytes.
command -v pkg-config >/dev/null 2>&1 || fail "no pkg-config"
command -v cc >/dev/null 2>&1 || fail "no C compiler"
cat >"$IT_TMP/use_dzcodec.c" <<'CEOF'
#include <dzcodec.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char** argv) {
  size_t n = 200000, zn = 0, bn = 0;
  unsigned char* in = malloc(n);
  for (size_t i = 0; i < n; ++i) in[i] = "the quick brown fox jumps over the lazy dog\n"[i % 44];
  dzc_ctx* ctx = dzc_ctx_new();
  size_t cap = dzc_compress_bound(n, 0);
  unsigned char* z = malloc(cap);
  unsigned char* back = malloc(n);
  if (!ctx || dzc_compress(ctx, z, cap, &zn, in, n) != DZC_OK) { fprintf(stderr, "compress: %s\n", dzc_last_error()); return 1; }
  if (dzc_decompress(ctx, back, n, &bn, z, zn) != DZC_OK || bn != n || memcmp(back, in, n) != 0) { fprintf(stderr, "round trip failed: %s\n", dzc_last_error()); return 1; }
  if (dzc_decompress(ctx, back, n, &bn, z, zn - 1) == DZC_OK) { fprintf(stderr, "truncated input accepted\n"); return 1; }
  FILE* f = fopen(argv[1], "wb");
  FILE* g = fopen(argv[2], "wb");
  if (!f || !g || fwrite(z, 1, zn, f) != zn || fwrite(in, 1, n, g) != n || fclose(f) || fclose(g)) return 1;
  printf("libdzcodec %s: %zu -> %zu bytes\n", dzc_version_string(), n, zn);
  dzc_ctx_free(ctx);
  return 0;
}
CEOF
flags=$(env -u PKG_CONFIG_PATH pkg-config --cflags --libs dzcodec 2>&1) || fail "pkg-config --cflags --libs dzcodec: $flags"
log "pkg-config --cflags --libs dzcodec: $flags"
# shellcheck disable=SC2086
out=$(cc -o "$IT_TMP/use_dzcodec" "$IT_TMP/use_dzcodec.c" $flags 2>&1) || fail "cc with pkg-config's flags failed: $out"
ldd "$IT_TMP/use_dzcodec" | grep -Eq '=> (/usr)?/lib/libdzcodec\.so\.0 ' || fail "the program does not use the installed library: $(ldd "$IT_TMP/use_dzcodec")"
out=$(env -u LD_LIBRARY_PATH "$IT_TMP/use_dzcodec" "$IT_TMP/lib.dzc" "$IT_TMP/lib.raw" 2>&1) || fail "the pkg-config program failed: $out"
log "$out"
/usr/bin/dzfs-codec decompress "$IT_TMP/lib.dzc" "$IT_TMP/lib.back" 2>/dev/null || fail "dzfs-codec cannot decode the library's output"
cmp -s "$IT_TMP/lib.raw" "$IT_TMP/lib.back" || fail "dzfs-codec decodes the library's output to other bytes"
out=$(cd / && env -u PYTHONPATH -u DZCODEC_LIBRARY /usr/bin/python3 -c '
import sys, dzcodec
z, raw = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
assert dzcodec.decompress(z) == raw, "python3-dzcodec decodes to other bytes"
assert dzcodec.compress(raw) == z, "python3-dzcodec encodes to other bytes"
print("python3-dzcodec", dzcodec.__file__)' "$IT_TMP/lib.dzc" "$IT_TMP/lib.raw" 2>&1) || fail "system python3 with python3-dzcodec: $out"
grep -q '^python3-dzcodec /usr/lib/python3/dist-packages/dzcodec/__init__.py' <<<"$out" || fail "python3 did not use the packaged module: $out"
log "$out"

# ---------------------------------------------------------------- a tree to back up
SRC=$IT_TMP/src
mkdir -p "$SRC/dir/sub" "$SRC/empty-dir"
head -c 3000000 /dev/urandom >"$SRC/random.bin"
for i in $(seq 2000); do echo "line $i of a text file that compresses and deduplicates well"; done >"$SRC/dir/text.txt"
cat "$SRC/dir/text.txt" "$SRC/dir/text.txt" >"$SRC/dir/sub/twice.txt"
: >"$SRC/empty-file"
truncate -s 5M "$SRC/sparse"; printf 'tail' >>"$SRC/sparse"
ln "$SRC/dir/text.txt" "$SRC/hardlink.txt"
ln -s dir/text.txt "$SRC/symlink"
chmod 0640 "$SRC/dir/text.txt"; chmod 0750 "$SRC/dir/sub"
chown 1234:2345 "$SRC/random.bin"
touch -d '2001-02-03 04:05:06' "$SRC/empty-file"
if command -v setfattr >/dev/null 2>&1; then setfattr -n user.dzfs -v packaged "$SRC/random.bin"; fi

# check_tree MNTDATA: the tree under MNTDATA is SRC: rsync --checksum dry run lists nothing,
# diff -r agrees, and the hard link is still one inode.
check_tree() {
  local dst=$1 out
  out=$(run_to 120 rsync -aHAXn --numeric-ids --checksum --itemize-changes "$SRC/" "$dst/" 2>&1) ||
    fail "rsync -aHAXn --checksum $SRC/ $dst/ failed: $out"
  [ -z "$out" ] || fail "read-back differs from the source (rsync -aHAXn --checksum):
$out"
  out=$(run_to 120 diff -r --no-dereference "$SRC" "$dst" 2>&1) || fail "diff -r $SRC $dst: $out"
  [ "$(stat -c %i "$dst/dir/text.txt")" = "$(stat -c %i "$dst/hardlink.txt")" ] ||
    fail "hard link lost: $dst/dir/text.txt and $dst/hardlink.txt are different inodes"
  [ "$(stat -c %Y "$dst/empty-file")" = "$(stat -c %Y "$SRC/empty-file")" ] || fail "mtime of empty-file not kept"
}

# wait_closed STORE: after a plain umount the daemon commits and exits on its own.
wait_closed() {
  local store=$1 i
  for ((i = 0; i < 600; i++)); do
    [ -z "$(dzfs_pids_for "$store")" ] && return 0
    sleep 0.1
  done
  fail "the dzfs daemon for $store did not exit within 60 s of the unmount"
}

# fstype_of MNT / source_of MNT / options_of MNT, from findmnt (which reads /proc/self/mountinfo).
fstype_of() { findmnt -n -o FSTYPE --mountpoint "$1" || true; }
source_of() { findmnt -n -o SOURCE --mountpoint "$1" || true; }
options_of() { findmnt -n -o OPTIONS --mountpoint "$1" || true; }

STORE=$IT_TMP/store
dz_mkfs "$STORE"

# ---------------------------------------------------------------- mount -t fuse.dzfs
MNT=$IT_TMP/mnt
mkdir -p "$MNT"
_it_register_mount "$MNT"
log "mount -t fuse.dzfs $STORE $MNT -o commit_secs=2,workers=1,noatime,relatime,defaults,_netdev,nofail,noauto"
out=$(run_to 60 mount -t fuse.dzfs "$STORE" "$MNT" -o commit_secs=2,workers=1,noatime,relatime,defaults,_netdev,nofail,noauto 2>&1) ||
  fail "mount -t fuse.dzfs failed: $out"
wait_mounted "$MNT" 10
[ "$(fstype_of "$MNT")" = fuse.dzfs ] || fail "findmnt says type '$(fstype_of "$MNT")', not fuse.dzfs"
[ "$(source_of "$MNT")" = "$STORE" ] || fail "findmnt says source '$(source_of "$MNT")', not $STORE"
awk -v s="$STORE" -v m="$MNT" '$1 == s && $2 == m && $3 == "fuse.dzfs" { f = 1 } END { exit !f }' /proc/mounts ||
  fail "/proc/mounts has no '$STORE $MNT fuse.dzfs' line: $(grep -F "$MNT" /proc/mounts)"
options_of "$MNT" | grep -qw noatime || fail "noatime did not reach the mount: $(options_of "$MNT")"
log "mounted: $(findmnt -n -o SOURCE,TARGET,FSTYPE,OPTIONS --mountpoint "$MNT")"

run_to 120 rsync -aHAX --numeric-ids "$SRC/" "$MNT/data/" || fail "rsync -aHAX into the mount failed"
check_tree "$MNT/data"
if command -v getfattr >/dev/null 2>&1; then
  [ "$(getfattr --only-values -n user.dzfs "$MNT/data/random.bin" 2>/dev/null)" = packaged ] || fail "xattr user.dzfs lost"
fi
[ "$(stat -c %u:%g "$MNT/data/random.bin")" = 1234:2345 ] || fail "owner of random.bin not kept"

log "umount $MNT (util-linux umount)"
run_to 60 umount "$MNT" || fail "umount $MNT failed"
is_mounted "$MNT" && fail "$MNT still mounted after umount"
wait_closed "$STORE"
dz_fsck "$STORE" 0
# Regular files (inodes): random.bin, text.txt (= hardlink.txt), twice.txt, empty-file, sparse.
files=$(dz_stat_key "$STORE" files)
[ "$files" -eq 5 ] || fail "dzfs stats after umount: files=$files, expected 5"

# ---------------------------------------------------------------- an fstab line: mount -T FILE MNT
MNT2=$IT_TMP/mnt-fstab
mkdir -p "$MNT2"
_it_register_mount "$MNT2"
FSTAB=$IT_TMP/fstab
printf '# test fstab\n%s %s fuse.dzfs %s 0 0\n' "$STORE" "$MNT2" \
  'defaults,noauto,nofail,_netdev,x-systemd.automount,x-systemd.idle-timeout=60,comment=dzfs-test,ro,commit_secs=3,allow_other' >"$FSTAB"
log "mount -T $FSTAB $MNT2: $(tail -n 1 "$FSTAB")"
out=$(run_to 60 mount -T "$FSTAB" "$MNT2" 2>&1) || fail "mount -T fstab $MNT2 failed: $out"
wait_mounted "$MNT2" 10
[ "$(fstype_of "$MNT2")" = fuse.dzfs ] || fail "fstab mount: type '$(fstype_of "$MNT2")', not fuse.dzfs"
opts=$(options_of "$MNT2")
grep -qE '(^|,)ro(,|$)' <<<"$opts" || fail "fstab mount: ro not applied: $opts"
grep -qw allow_other <<<"$opts" || fail "fstab mount: allow_other not applied: $opts"
check_tree "$MNT2/data"
if touch "$MNT2/data/new" 2>/dev/null; then fail "fstab mount with ro: creating a file succeeded"; fi
run_to 60 umount "$MNT2" || fail "umount $MNT2 failed"
wait_closed "$STORE"

# ---------------------------------------------------------------- dzfs@.service's command lines
# Run ExecStartPre/ExecStart/ExecStop of the installed unit as systemd would: %i = the escaped
# instance, %f = "/" + its unescaped form, Environment= then EnvironmentFile= (here under $IT_TMP
# instead of /etc/dzfs), ${VAR} expanded as one word, bare program names looked up in systemd's
# fixed PATH. Type=forking: ExecStart must return with the volume mounted.
if command -v systemd-escape >/dev/null 2>&1; then
  MNT3=$IT_TMP/mnt-unit
  _it_register_mount "$MNT3"
  inst=$(systemd-escape --path "$MNT3")
  mkdir -p "$IT_TMP/etc-dzfs"
  printf 'STORE=%s\nOPTIONS=commit_secs=2,workers=1\n' "$STORE" >"$IT_TMP/etc-dzfs/$inst.conf"
  "$PY" - "$inst" "$IT_TMP/etc-dzfs" >"$IT_TMP/unit.cmds" <<'EOF' || fail "cannot read the unit's commands"
import re, shlex, subprocess, sys
inst, etc = sys.argv[1], sys.argv[2]
unescaped = subprocess.run(["systemd-escape", "--unescape", "--path", inst], check=True,
                           capture_output=True, text=True).stdout.strip()
spec = {"%i": inst, "%f": "/" + unescaped.lstrip("/"), "%%": "%"}
env, cmds = {}, []
for line in open("/usr/lib/systemd/system/dzfs@.service"):
    line = line.strip()
    if not line or line[0] in "#;[" or "=" not in line:
        continue
    key, val = line.split("=", 1)
    val = re.sub(r"%[if%]", lambda m: spec[m.group(0)], val)
    if key == "Environment":
        k, v = val.split("=", 1)
        env[k] = v
    elif key == "EnvironmentFile":
        path = val.lstrip("-").replace("/etc/dzfs", etc, 1)
        for l in open(path):
            l = l.strip()
            if l and not l.startswith("#"):
                k, v = l.split("=", 1)
                env[k] = v
    elif key in ("ExecStartPre", "ExecStart", "ExecStop"):
        words = [re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), w) for w in shlex.split(val.lstrip("-@:+!"))]
        cmds.append(key + "\t" + "\t".join(words))
print("\n".join(cmds))
EOF
  grep -q '^ExecStart	' "$IT_TMP/unit.cmds" && grep -q '^ExecStop	' "$IT_TMP/unit.cmds" ||
    fail "the unit lacks ExecStart or ExecStop: $(cat "$IT_TMP/unit.cmds")"
  run_unit() {  # run_unit KEY: the unit's KEY commands, in order, with systemd's fixed PATH
    local key=$1 line rc
    while IFS= read -r line; do
      [ "${line%%$'\t'*}" = "$key" ] || continue
      IFS=$'\t' read -r -a words <<<"${line#*$'\t'}"
      log "unit $key: ${words[*]}"
      rc=0
      env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin timeout -k 5 120 "${words[@]}" </dev/null >"$IT_TMP/unit.out" 2>&1 || rc=$?
      [ "$rc" -eq 0 ] || fail "unit $key '${words[*]}' exit $rc: $(cat "$IT_TMP/unit.out")"
    done <"$IT_TMP/unit.cmds"
  }
  run_unit ExecStartPre
  run_unit ExecStart
  is_fuse_mounted "$MNT3" || fail "after the unit's ExecStart (Type=forking) $MNT3 is not mounted"
  [ "$(fstype_of "$MNT3")" = fuse.dzfs ] || fail "unit mount: type '$(fstype_of "$MNT3")'"
  check_tree "$MNT3/data"
  echo "written through the unit's mount" >"$MNT3/unit-file"
  run_unit ExecStop
  is_mounted "$MNT3" && fail "after the unit's ExecStop $MNT3 is still mounted"
  [ -z "$(dzfs_pids_for "$STORE")" ] || fail "after the unit's ExecStop (dzfs umount) a daemon still runs"
  dz_fsck "$STORE" 0
  [ "$(dz_stat_key "$STORE" files)" -eq $((files + 1)) ] || fail "the file written through the unit's mount was not committed"
else
  log "unit command check skipped: no systemd-escape"
fi

# ---------------------------------------------------------------- uninstall
log "dpkg -r/-P $PKGS"
# shellcheck disable=SC2086
run_to 120 dpkg -r $PKGS >"$IT_TMP/dpkg-r.log" 2>&1 || fail "dpkg -r failed: $(cat "$IT_TMP/dpkg-r.log")"
# shellcheck disable=SC2086
run_to 120 dpkg -P $PKGS >>"$IT_TMP/dpkg-r.log" 2>&1 || fail "dpkg -P failed: $(cat "$IT_TMP/dpkg-r.log")"
INSTALLED=""
rm -f "$MARKER"
for f in /usr/bin/dzfs /usr/bin/dzfs-codec /usr/share/man/man8/dzfs.8.gz /usr/lib/systemd/system/dzfs@.service /usr/share/doc/dzfs \
         /usr/lib/libdzcodec.so.0 /usr/lib/libdzcodec.so /usr/include/dzcodec.h /usr/lib/pkgconfig/dzcodec.pc \
         /usr/lib/python3/dist-packages/dzcodec; do
  [ ! -e "$f" ] || fail "$f is still there after dpkg -r/-P"
done
if pkg_known; then fail "dpkg still lists one of $PKGS"; fi
DZFS=$BUILT_DZFS
log "package test done"
