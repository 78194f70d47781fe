#!/usr/bin/env bash
# Creates (once) and enters a Debian root with GIMP 3 and Python-enabled plug-ins.
# Debian 12 ships no Python-capable GIMP, so the real-GIMP tests run GIMP from a newer Debian
# in a debootstrap root:
#   STYLECORE_GIMP_DIST=trixie (default)  GIMP 3.0.4, Python 3.13
#   STYLECORE_GIMP_DIST=forky             GIMP 3.2.x (the current stable GIMP), Python 3.14
# Needs root. Each root is cached under a name that includes a hash of its distribution and
# package list, so changing either builds a new one; delete ~/.cache/stylecore/gimp-root-* to start over.
#
#   scripts/gimp_root.sh provision      create the root (idempotent, ~1.5-2 min, ~2 GB)
#   scripts/gimp_root.sh mount          mount /proc, /dev and the share folder inside it
#   scripts/gimp_root.sh umount         unmount the share; /proc and /dev too once no other share uses the root
#   scripts/gimp_root.sh path           print the root's path
#   scripts/gimp_root.sh version        print the GIMP series in the root (3.0 or 3.2)
set -euo pipefail

DIST=${STYLECORE_GIMP_DIST:-trixie}
case "$DIST" in
  trixie) GIMP_SERIES=3.0 ;;
  forky) GIMP_SERIES=3.2 ;;
  *) echo "gimp_root.sh: STYLECORE_GIMP_DIST must be trixie or forky, not '$DIST'" >&2; exit 2 ;;
esac
PACKAGES="gimp gir1.2-gimp-3.0 gir1.2-gegl-0.4 python3-gi python3-numpy python3-pil python3-torch python3-torchvision openssh-client"
KEY=$(printf '%s %s' "$DIST" "$PACKAGES" | sha256sum | cut -c1-10)
ROOT=${STYLECORE_GIMP_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/stylecore/gimp-root-$DIST-$KEY}
SHARE=${STYLECORE_GIMP_SHARE:-/tmp/stylecore-gimp-share}
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

# Several test sessions may use one root with different shares: /proc and /dev stay mounted
# while another share is still mounted inside it.
do_umount() {
  is_mounted "$ROOT$SHARE" && umount -l "$ROOT$SHARE" || true
  local others
  others=$(awk -v r="$ROOT/" 'index($2, r) == 1 {print $2}' /proc/mounts \
           | grep -vE "^$ROOT/(proc|dev|dev/shm)\$" || true)
  [ -n "$others" ] && return 0
  for m in "$ROOT/dev/shm" "$ROOT/dev" "$ROOT/proc"; do
    is_mounted "$m" && umount -l "$m" || true
  done
}

provision() {
  if [ -f "$READY" ]; then echo "GIMP $GIMP_SERIES root ready: $ROOT"; return; fi
  [ "$(id -u)" = 0 ] || { echo "gimp_root.sh: creating the GIMP root needs root (debootstrap, chroot)" >&2; exit 2; }
  command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  SHARE=/nonexistent do_umount
  rm -rf --one-file-system "$ROOT"; mkdir -p "$(dirname "$ROOT")"
  local script="" apt_opts=()
  if [ "$DIST" = forky ]; then
    # Debian 12's debootstrap has no forky script (sid's fits), and a snapshot archive's
    # testing Release file reads as expired.
    script=/usr/share/debootstrap/scripts/sid
    apt_opts=(-o Acquire::Check-Valid-Until=false)
  fi
  echo "creating Debian $DIST root (GIMP $GIMP_SERIES) at $ROOT (about 2 min) ..."
  debootstrap --variant=minbase "$DIST" "$ROOT" "$(mirror)" $script >"$ROOT.debootstrap.log" 2>&1 \
    || { echo "debootstrap failed; see $ROOT.debootstrap.log" >&2; exit 1; }
  mount -t proc proc "$ROOT/proc"
  trap 'umount -l "$ROOT/proc" 2>/dev/null || true' EXIT
  chroot "$ROOT" apt-get "${apt_opts[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive chroot "$ROOT" apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends $PACKAGES >"$ROOT.apt.log" 2>&1 \
    || { echo "apt-get in the root failed; see $ROOT.apt.log" >&2; exit 1; }
  chroot "$ROOT" apt-get clean
  umount -l "$ROOT/proc"; trap - EXIT
  touch "$READY"
  echo "GIMP $GIMP_SERIES root ready: $ROOT"
}

case "${1:-provision}" in
  provision) provision ;;
  mount) do_mount ;;
  umount) do_umount ;;
  path) echo "$ROOT" ;;
  version) echo "$GIMP_SERIES" ;;
  *) echo "usage: $0 provision|mount|umount|path|version" >&2; exit 2 ;;
esac
