#!/usr/bin/env bash
# Screenshot of the real plug-in dialog (GIMP 3 GUI on a virtual X display inside the trixie root)
# -> docs/dialog.png. Needs root and the .venv that install.py makes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(bash scripts/gimp_root.sh path)
SHARE=/tmp/stylecore-gimp-share
.venv/bin/python -c "
from pathlib import Path; import shutil
from stylecore import weights
from tests.gimp import harness as h
h.prepare(weights.cache_path('vgg16'))
bench = Path('benchmarks/images')
shutil.copy(bench / 'tubingen.jpg', h.SHARE / 'content.jpg')
shutil.copy(bench / 'starry_night.jpg', h.SHARE / 'style.jpg')
"
DEBIAN_FRONTEND=noninteractive chroot "$ROOT" apt-get install -y -qq --no-install-recommends xvfb xauth x11-apps netpbm fonts-dejavu-core >/dev/null
cat > "$SHARE/shot.py" <<PY
import gi
gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio
img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path("$SHARE/content.jpg"))
Gimp.Display.new(img)
proc = Gimp.get_pdb().lookup_procedure("python-fu-style-transfer")
cfg = proc.create_config()
cfg.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
cfg.set_property("image", img)
cfg.set_core_object_array("drawables", [img.get_layers()[0]])
cfg.set_property("style-file", Gio.File.new_for_path("$SHARE/style.jpg"))
proc.run(cfg)
PY
chroot "$ROOT" /usr/bin/env -i HOME=/tmp/gimphome PATH=/usr/bin:/bin LANG=C.UTF-8 GIMP3_DIRECTORY=$SHARE/gimpcfg sh -c '
Xvfb :99 -screen 0 1400x1000x24 >/dev/null 2>&1 & sleep 2
DISPLAY=:99 timeout 120 gimp-3.0 --no-splash --batch-interpreter=python-fu-eval -b "exec(open(\"'$SHARE'/shot.py\").read())" >/dev/null 2>&1 &
for i in $(seq 60); do sleep 2; DISPLAY=:99 xwd -name "Style Transfer" -silent >/tmp/d.xwd 2>/dev/null && break; done
sleep 3; DISPLAY=:99 xwd -name "Style Transfer" -silent | xwdtopnm 2>/dev/null | pnmtopng >'$SHARE'/dialog.png
pkill -x gimp-3.0 || true; pkill -x Xvfb || true'
cp "$SHARE/dialog.png" docs/dialog.png
bash scripts/gimp_root.sh umount
echo "wrote docs/dialog.png"
