#!/bin/sh
# install.sh of the offline tarball (scripts/pack-offline.sh): checks, in place, that
# this unpacked isohost runs here, with no registry and no compiler. It never calls npm.
#   tar -xzf isohost-VERSION-PLATFORM.tar.gz -C /opt && /opt/isohost/install.sh [--systemd]
# --systemd also installs deploy/systemd/isohost.service and, when absent,
# /etc/isohost/isohost.yaml from deploy/isohost.example.yaml (then: systemctl daemon-reload
# && systemctl enable --now isohost). The unit expects this folder at /opt/isohost and
# Node 24 at /usr/bin/node.
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

fail() {
  echo "install.sh: $*" >&2
  exit 1
}

command -v node >/dev/null 2>&1 || fail "node not found; install Node.js 24 or newer"
major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$major" -ge 24 ] || fail "Node.js $(node --version) found; isohost needs 24 or newer"
platform="$(node -p 'process.platform + "-" + process.arch')"

# The native addons and esbuild's binary must load on this machine (they were installed
# for the packing machine's platform).
node -e "require('isolated-vm'); require('classic-level'); require('esbuild').version" 2>/dev/null \
  || fail "the bundled native modules do not load on $platform; pack on a machine of the same platform"
node bin/isohost.js config check deploy/isohost.example.yaml >/dev/null \
  || fail "isohost config check failed"

if [ "${1:-}" = "--systemd" ]; then
  [ "$here" = /opt/isohost ] || fail "--systemd expects the install at /opt/isohost (it is at $here)"
  install -m 0644 deploy/systemd/isohost.service /etc/systemd/system/isohost.service
  if [ ! -e /etc/isohost/isohost.yaml ]; then
    install -d -m 0755 /etc/isohost
    install -m 0644 deploy/isohost.example.yaml /etc/isohost/isohost.yaml
  fi
  echo "installed /etc/systemd/system/isohost.service; now: systemctl daemon-reload && systemctl enable --now isohost"
fi
echo "isohost $(node -p 'require("./package.json").version') ready in $here ($platform, node $(node --version))"
