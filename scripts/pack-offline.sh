#!/usr/bin/env bash
# `npm run pack:offline`: ONE tarball holding isohost and its production dependencies,
# installed from the lockfile, with the guest prelude prebuilt, the CycloneDX SBOM and
# install.sh. On the target it needs Node 24 and nothing else: no registry, no compiler.
#   tar -xzf isohost-VERSION-linux-ARCH.tar.gz -C /opt && /opt/isohost/install.sh
# The native addons (isolated-vm, classic-level, esbuild's binary) are for the platform
# this runs on, hence the platform in the name.
#
# `npm run sbom` (--sbom-only): just the SBOM. It is taken from the production install
# made here, not from the working tree: `npm sbom --omit dev` drops production packages
# that a devDependency also uses (npm/cli#7909; here esbuild and yaml).
#
# In a git checkout the files come from the commit HEAD names (recorded in REVISION), so a
# tarball is exactly one commit whatever else the work tree holds; --worktree packs the
# work tree instead (also what happens outside git).
#
# Options: --out DIR (default ./dist), --sbom-only, --worktree.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/dist"
sbom_only=0
worktree=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --sbom-only) sbom_only=1; shift ;;
    --worktree) worktree=1; shift ;;
    *) echo "usage: pack-offline.sh [--out DIR] [--sbom-only] [--worktree]" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"

version="$(node -p 'require(process.argv[1]).version' "$root/package.json")"
platform="$(node -p 'process.platform + "-" + process.arch')"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The folder is the name the tarball unpacks to (and npm sbom's name for the root component).
stage="$work/isohost"
mkdir "$stage"

# What the code needs at run time (src/ reads runtime-api/, sample-miniapps/, console/ and templates/ through
# import.meta.url), the deploy artefacts and the docs. Same list as deploy/docker/Dockerfile, plus
# templates/ (the starter of `isohost init`, a partner's tool the server image does not need).
paths="package.json package-lock.json bin src runtime-api sample-miniapps console templates deploy README.md docs scripts/offline-install.sh"
if [ "$worktree" = 0 ] && revision="$(git -C "$root" rev-parse HEAD 2>/dev/null)"; then
  # shellcheck disable=SC2086 # the list is split on purpose
  git -C "$root" archive --format=tar "$revision" $paths | tar -x -C "$stage"
  echo "$revision" >"$stage/REVISION"
else
  for path in $paths; do mkdir -p "$(dirname "$stage/$path")" && cp -R "$root/$path" "$stage/$path"; done
fi
mv "$stage/scripts/offline-install.sh" "$stage/install.sh"
rmdir "$stage/scripts"

# Exactly the lockfile, production dependencies only. --prefer-offline: the packing machine's
# npm cache first, the registry only for what it lacks.
(cd "$stage" && npm ci --omit=dev --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null)

# The installed package.json describes what ships: no devDependencies, and only the
# scripts whose files are in the tarball.
node - "$stage/package.json" <<'EOF'
const fs = require('node:fs');
const file = process.argv[2];
const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
delete pkg.devDependencies;
pkg.scripts = { start: pkg.scripts.start };
fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n');
EOF

(cd "$stage" && npm sbom --sbom-format cyclonedx --sbom-type application --loglevel=error >"$stage/isohost.cdx.json")
if [ "$sbom_only" = 1 ]; then
  cp "$stage/isohost.cdx.json" "$out/isohost.cdx.json"
  echo "$out/isohost.cdx.json"
  exit 0
fi

# Bundle the guest prelude into node_modules/.cache/isohost/ now: an installation under
# ProtectSystem=strict or a read-only root cannot write it and would rebuild it at each start.
(cd "$stage" && node --input-type=module -e "(await import('./src/sandbox/prelude-build.ts')).preludeSource()")
ls "$stage"/node_modules/.cache/isohost/prelude-*.js >/dev/null

chmod 0755 "$stage/install.sh"

tarball="$out/isohost-$version-$platform.tar.gz"
# Owner and timestamps normalised, so the archive says nothing about the packing machine.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00Z' \
  -czf "$tarball" -C "$work" isohost
echo "$tarball"
