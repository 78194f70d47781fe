#!/usr/bin/env bash
# Remakes docs/dialog.png and docs/dialog-instant.png from the REAL plug-in dialog: GIMP 3.0.4's GUI on a
# virtual X display in the trixie root (scripts/gimp_root.sh), with the plug-in installed there by install.py.
# The live preview paints; then the strength is changed once from the keyboard, as a user would (Alt+T is the
# Strength field's mnemonic); one shot is taken when the instant picture of the updated preview is shown
# (docs/dialog-instant.png), the other when the optimisation has finished it (docs/dialog.png). Needs root and the real
# weights (~/.cache/stylecore/vgg16-features.npz). Takes a few minutes, most of it GIMP's first start.
#   STYLECORE_GIMP_SHARE=/tmp/stylecore-gimp-share-mine bash scripts/dialog_screenshot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export STYLECORE_GIMP_SHARE=${STYLECORE_GIMP_SHARE:-/tmp/stylecore-gimp-share}
export STYLECORE_GIMP_DIST=trixie
DIR=$STYLECORE_GIMP_SHARE/trixie
ROOT=$(bash scripts/gimp_root.sh path)
NEW_STRENGTH=${NEW_STRENGTH:-90}
.venv/bin/python - <<'PY'
import shutil
from pathlib import Path

from stylecore import instant_weights, weights
from tests.gimp import harness as h

gimp = h.Gimp("trixie")
gimp.prepare(weights.cache_path("vgg16"), instant_weights.verify().transform.parent)
shutil.copy(Path("benchmarks/images/tubingen.jpg"), gimp.dir / "content.jpg")
shutil.copy(Path("benchmarks/images/starry_night.jpg"), gimp.dir / "style.jpg")
PY
DEBIAN_FRONTEND=noninteractive chroot "$ROOT" apt-get install -y -qq --no-install-recommends \
  xvfb xauth x11-apps netpbm fonts-dejavu-core xdotool >/dev/null
cat > "$DIR/shot.py" <<PY
import gi
gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio
img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path("$DIR/content.jpg"))
Gimp.Display.new(img)
proc = Gimp.get_pdb().lookup_procedure("python-fu-style-transfer")
cfg = proc.create_config()
cfg.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
cfg.set_property("image", img)
cfg.set_core_object_array("drawables", [img.get_layers()[0]])
cfg.set_property("style-file", Gio.File.new_for_path("$DIR/style.jpg"))
proc.run(cfg)
PY
rm -f "$DIR/dialog.png" "$DIR/dialog-instant.png"
chroot "$ROOT" /usr/bin/env -i HOME="$DIR/home" TMPDIR="$DIR/tmp" PATH=/usr/bin:/bin LANG=C.UTF-8 \
  GIMP3_DIRECTORY="$DIR/gimpcfg" DIR="$DIR" NEW_STRENGTH="$NEW_STRENGTH" sh -c '
count() { cat "$DIR"/home/.cache/stylecore/gimp-logs/worker-*.log 2>/dev/null | grep -c "$1" || true; }
wait_for() {  # wait_for PATTERN N SECONDS: until the worker log has N lines matching PATTERN
  i=0; while [ "$(count "$1")" -lt "$2" ]; do i=$((i + 1)); [ $i -gt $(($3 * 2)) ] && return 1; sleep 0.5; done
}
Xvfb :98 -screen 0 1400x1000x24 >/dev/null 2>&1 & XVFB=$!
sleep 2
export DISPLAY=:98
timeout 1200 gimp-3.0 --no-splash --batch-interpreter=python-fu-eval -b "exec(open(\"$DIR/shot.py\").read())" \
  >"$DIR/gimp.log" 2>&1 & GIMP=$!
status=0
WIN=$(timeout 300 xdotool search --sync --name "^Style Transfer$" | head -1) || status=1
if [ $status = 0 ] && wait_for "preview-1: result" 1 600; then
  xdotool windowfocus --sync "$WIN"
  for try in 1 2 3; do  # Alt+T may land on "Seamless tile" (same mnemonic) first: GTK cycles between them
    xdotool key alt+t sleep 0.3 key End sleep 0.1 key --repeat 8 BackSpace sleep 0.1 type "$NEW_STRENGTH"
    xdotool sleep 0.2 key Tab
    wait_for ": started" 2 5 && break
  done
  shot() { xwd -id "$WIN" -silent | xwdtopnm 2>/dev/null | pnmtopng >"$DIR/$1"; }
  wait_for "instant picture" 2 60 && sleep 0.3 && shot dialog-instant.png || status=1
  wait_for "preview-[0-9]*: result" 2 600 && sleep 1 && shot dialog.png || status=1
else
  status=1
fi
xdotool key --window "$WIN" Escape 2>/dev/null || true
sleep 2; kill $GIMP 2>/dev/null || true; sleep 1; kill $XVFB 2>/dev/null || true
cat "$DIR"/home/.cache/stylecore/gimp-logs/worker-*.log 2>/dev/null | grep "stylecore worker:" || true
exit $status' || { echo "no screenshot: see $DIR/gimp.log and the worker log above" >&2; bash scripts/gimp_root.sh umount; exit 1; }
cp "$DIR/dialog.png" "$DIR/dialog-instant.png" docs/
bash scripts/gimp_root.sh umount
echo "wrote docs/dialog-instant.png and docs/dialog.png"
