#!/usr/bin/env bash
# add-release-rpm.sh SRC OUT NAME VERSION RELEASE [CPE]
#
# Copies the root filesystem SRC (a make-rhel9-rootfs.sh tree) to OUT and registers one more stub
# package NAME-VERSION-RELEASE (no payload, like the tree's other packages) in OUT's rpm database,
# so that another distribution's SCAP content (its CPE check is "NAME is version X") evaluates its
# rules on the tree: e.g. oraclelinux-release 9.4 for ssg-ol9-ds.xml, sles-release 15.5 for
# ssg-sle15-ds.xml, fedora-release 38 for ssg-fedora-ds.xml. CPE, when given, replaces
# /etc/system-release-cpe (Fedora's check also reads it: cpe:/o:fedoraproject:fedora:38).
# Needs: root (cp -a keeps owners), rpm + rpmbuild (Debian's rpm).
set -euo pipefail
SRC=${1:?src}; OUT=${2:?out}; NAME=${3:?name}; VER=${4:?version}; REL=${5:?release}; CPE=${6:-}
[ -d "$SRC/var/lib/rpm" ] || { echo "$SRC has no var/lib/rpm" >&2; exit 2; }
rm -rf --one-file-system "$OUT"
cp -a "$SRC" "$OUT"
OUT=$(cd "$OUT" && pwd)
[ -z "$CPE" ] || printf '%s\n' "$CPE" > "$OUT/etc/system-release-cpe"
BUILD=$(mktemp -d /tmp/kensa-release-rpm.XXXXXX)
trap 'rm -rf "$BUILD"' EXIT
cat > "$BUILD/stub.spec" <<SPEC
Name: $NAME
Version: $VER
Release: $REL
Summary: stub of $NAME for offline scan tests
License: MIT
BuildArch: noarch
%description
Stub package used to populate a test RPM database.
%files
SPEC
rpmbuild -bb --quiet --define "_topdir $BUILD/top" --define "_build_id_links none" \
  --define "_rpmfilename stub.rpm" --define "source_date_epoch_from_changelog 0" \
  "$BUILD/stub.spec" >"$BUILD/rpmbuild.log" 2>&1 || { tail -20 "$BUILD/rpmbuild.log" >&2; exit 1; }
# A package of the same name is replaced (redhat-release 8.9 instead of 9.4 for ssg-rhel8-ds.xml).
rpm --dbpath "$OUT/var/lib/rpm" --define '_db_backend sqlite' -e --justdb --nodeps --noscripts --notriggers \
  --allmatches "$NAME" >/dev/null 2>&1 || true
rpm --dbpath "$OUT/var/lib/rpm" --define '_db_backend sqlite' -i --justdb --nodeps --noscripts \
  --notriggers --nosignature --nodigest --ignorearch --ignoreos "$BUILD/top/RPMS/stub.rpm" 2>&1 \
  | grep -v -e 'should not be used directly' -e 'assuming you know' || true
rm -f "$OUT/var/lib/rpm/.rpm.lock" "$OUT/var/lib/rpm/rpmdb.sqlite-shm" "$OUT/var/lib/rpm/rpmdb.sqlite-wal"
chmod 644 "$OUT/var/lib/rpm/rpmdb.sqlite"
