#!/usr/bin/env bash
# add-release-rpm.sh SRC OUT CPE NAME:VERSION:RELEASE...
#
# Copies the root filesystem SRC to OUT and registers stub packages (no payload, like the
# packages of make-rhel9-rootfs.sh) in OUT's rpm database, so that another distribution's SCAP
# content (its CPE check is "NAME is version X") evaluates its rules on the tree: e.g.
# oraclelinux-release:9.4:1.el9 for ssg-ol9-ds.xml, sles-release:15.5:1 for ssg-sle15-ds.xml,
# redhat-release:8.9:0.5.el8 for ssg-rhel8-ds.xml (a package of the same name is replaced).
# CPE, when not empty, replaces /etc/system-release-cpe (Fedora's check also reads it).
# LINK=1: OUT's files are hard links to SRC's (for the large Debian tree); its rpm database is
# always a new file, never shared with SRC.
# Needs: root (cp -a keeps owners), rpm + rpmbuild (Debian's rpm).
set -euo pipefail
SRC=${1:?src}; OUT=${2:?out}; CPE=${3?cpe}; shift 3
[ $# -gt 0 ] || { echo "no packages given" >&2; exit 2; }
rm -rf --one-file-system "$OUT"
if [ -n "${LINK:-}" ]; then
  cp -al "$SRC" "$OUT"
  rm -rf "$OUT/var/lib/rpm"
else
  cp -a "$SRC" "$OUT"
fi
OUT=$(cd "$OUT" && pwd)
if [ -n "$CPE" ]; then rm -f "$OUT/etc/system-release-cpe"; printf '%s\n' "$CPE" > "$OUT/etc/system-release-cpe"; fi
DB=(--dbpath "$OUT/var/lib/rpm" --define '_db_backend sqlite')
if [ ! -e "$OUT/var/lib/rpm/rpmdb.sqlite" ]; then mkdir -p "$OUT/var/lib/rpm"; rpm "${DB[@]}" --initdb; fi
BUILD=$(mktemp -d /tmp/kensa-release-rpm.XXXXXX)
trap 'rm -rf "$BUILD"' EXIT
cat > "$BUILD/stub.spec" <<'SPEC'
Name: %{pkgname}
Version: %{pkgver}
Release: %{pkgrel}
Summary: stub of %{pkgname} for offline scan tests
License: MIT
BuildArch: noarch
%description
Stub package used to populate a test RPM database.
%files
SPEC
for p in "$@"; do
  IFS=: read -r name ver rel <<<"$p"
  [ -n "$name" ] && [ -n "$ver" ] && [ -n "$rel" ] || { echo "bad package $p (NAME:VERSION:RELEASE)" >&2; exit 2; }
  rpmbuild -bb --quiet --define "_topdir $BUILD/top" --define "_build_id_links none" \
    --define "pkgname $name" --define "pkgver $ver" --define "pkgrel $rel" \
    --define "_rpmfilename %%{NAME}.rpm" --define "source_date_epoch_from_changelog 0" \
    "$BUILD/stub.spec" >"$BUILD/rpmbuild.log" 2>&1 || { tail -20 "$BUILD/rpmbuild.log" >&2; exit 1; }
  rpm "${DB[@]}" -e --justdb --nodeps --noscripts --notriggers --allmatches "$name" >/dev/null 2>&1 || true
done
rpm "${DB[@]}" -i --justdb --nodeps --noscripts --notriggers --nosignature --nodigest --ignorearch --ignoreos \
  "$BUILD"/top/RPMS/*.rpm 2>&1 | grep -v -e 'should not be used directly' -e 'assuming you know' || true
rm -f "$OUT/var/lib/rpm/.rpm.lock" "$OUT/var/lib/rpm/rpmdb.sqlite-shm" "$OUT/var/lib/rpm/rpmdb.sqlite-wal"
chmod 644 "$OUT/var/lib/rpm/rpmdb.sqlite"
