#!/usr/bin/env bash
# Creates (once) and enters a Debian trixie root with GIMP 3 and Python-enabled plug-ins.
# Debian 12 ships no Python-capable GIMP, so the real-GIMP tests run GIMP 3.0.4 from trixie
# in a debootstrap root. Needs root. The root is cached; delete it to start over.
#
#   scripts/gimp_root.sh provision      create the root (idempotent, ~1.5 min, ~1.8 GB)
#   scripts/gimp_root.sh mount          mount /proc, /dev and the share folder inside it
#   scripts/gimp_root.sh umount
#   scripts/gimp_root.sh path           print the root's path
set -euo pipefail

ROOT=${STYLECORE_GIMP_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/stylecore/gimp-root}
SHARE=${STYLECORE_GIMP_SHARE:-/tmp/stylecore-gimp-share}
PACKAGES="gimp gir1.2-gimp-3.0 gir1.2-gegl-0.4 python3-gi python3-numpy python3-pil python3-torch python3-torchvision"
READY="$ROOT/.stylecore-ready"

mirror() {
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

is_mounted() { mountpoint -q "$1" 2>/dev/null; }

do_mount() {
  mkdir -p "$SHARE" "$ROOT$SHARE" "$ROOT/proc" "$ROOT/dev"
  is_mounted "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
  is_mounted "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
  if [ -d /dev/shm ]; then mkdir -p "$ROOT/dev/shm"; is_mounted "$ROOT/dev/shm" || mount --bind /dev/shm "$ROOT/dev/shm"; fi
  is_mounted "$ROOT$SHARE" || mount --bind "$SHARE" "$ROOT$SHARE"
}

do_umount() {
  for m in "$ROOT$SHARE" "$ROOT/dev/shm" "$ROOT/dev" "$ROOT/proc"; do
    is_mounted "$m" && umount -l "$m" || true
  done
}

provision() {
  if [ -f "$READY" ]; then echo "GIMP root ready: $ROOT"; return; fi
  [ "$(id -u)" = 0 ] || { echo "gimp_root.sh: creating the GIMP root needs root (debootstrap, chroot)" >&2; exit 2; }
  command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  do_umount
  rm -rf "$ROOT"; mkdir -p "$(dirname "$ROOT")"
  echo "creating Debian trixie root at $ROOT (about 1.5 min) ..."
  debootstrap --variant=minbase trixie "$ROOT" "$(mirror)" >"$ROOT.debootstrap.log" 2>&1 \
    || { echo "debootstrap failed; see $ROOT.debootstrap.log" >&2; exit 1; }
  mount -t proc proc "$ROOT/proc"
  trap 'umount -l "$ROOT/proc" 2>/dev/null || true' EXIT
  chroot "$ROOT" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive chroot "$ROOT" apt-get install -y -qq --no-install-recommends $PACKAGES >"$ROOT.apt.log" 2>&1 \
    || { echo "apt-get in the root failed; see $ROOT.apt.log" >&2; exit 1; }
  chroot "$ROOT" apt-get clean
  umount -l "$ROOT/proc"; trap - EXIT
  touch "$READY"
  echo "GIMP root ready: $ROOT"
}

case "${1:-provision}" in
  provision) provision ;;
  mount) do_mount ;;
  umount) do_umount ;;
  path) echo "$ROOT" ;;
  *) echo "usage: $0 provision|mount|umount|path" >&2; exit 2 ;;
esac
