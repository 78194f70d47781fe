#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters > Style Transfer...

Thin by design: it reads the layer, shows the dialog, runs stylecore in a worker process (the
interpreter that install.py recorded), turns the worker's JSON progress into GIMP's progress
bar, and writes the result as a new layer above the source, in one undo group. The source
layer is never written to. Several selected layers are refused (one layer per run keeps the
undo step and the progress bar meaningful).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

import gi
import numpy as np

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

PROC_NAME = "python-fu-style-transfer"
HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG_PATH = os.path.join(HERE, "stylecore-worker.json")
QUALITIES = (("draft", "Draft (quick preview)"), ("balanced", "Balanced"), ("best", "Best (slow)"))
DEVICES = (("auto", "Automatic (GPU if available)"), ("cpu", "CPU"), ("cuda", "NVIDIA GPU (CUDA)"), ("mps", "Apple GPU (MPS)"))
FLOAT_RGBA = "R'G'B'A float"
EXIT_MESSAGES = {3: "no VGG weights: run 'python3 install.py' again (it fetches them)", 5: "out of memory"}


class PluginError(Exception):
    """A failure with a one-line message that tells the user what to do."""


def log_path():
    return os.path.join(tempfile.gettempdir(), "stylecore-gimp-worker.log")


def load_worker_config():
    try:
        with open(CONFIG_PATH) as fh:
            cfg = json.load(fh)
    except (OSError, ValueError):
        raise PluginError(f"{CONFIG_PATH} is missing or unreadable; run 'python3 install.py' from the stylecore folder") from None
    python = cfg.get("python", "")
    if not python or not os.path.exists(python):
        raise PluginError(f"the worker Python '{python}' no longer exists; run 'python3 install.py' again")
    return cfg


def _choice(options):
    choice = Gimp.Choice.new()
    for i, (nick, label) in enumerate(options):
        choice.add(nick, i, label, "")
    return choice


def read_region(drawable):
    """The layer's pixels inside the selection's bounding box, as float RGBA, plus that box."""
    ok, x, y, w, h = drawable.mask_intersect()
    if not ok or w == 0 or h == 0:
        raise PluginError("the selection does not touch this layer; select part of the layer or Select > None")
    buf = drawable.get_buffer()
    raw = buf.get(Gegl.Rectangle.new(x, y, w, h), 1.0, FLOAT_RGBA, Gegl.AbyssPolicy.CLAMP)
    arr = np.frombuffer(bytes(raw), dtype=np.float32).reshape(h, w, 4).copy()
    return arr, (x, y, w, h)


def worker_command(cfg, content, style_paths, blend, output, config):
    cmd = [cfg["python"], "-u", "-m", "stylecore", content, *style_paths, "-o", output, "--json-progress",
           "--cancel-on-stdin-eof", "--strength", str(config.get_property("strength")),
           "--preset", config.get_property("quality"), "--seed", str(config.get_property("seed")),
           "--style-scale", str(config.get_property("style-scale")), "--device", config.get_property("device")]
    if blend is not None:
        cmd += ["--style-weights", str(100.0 - blend), str(blend)]
    if config.get_property("preserve-colors"):
        cmd.append("--preserve-colors")
    if config.get_property("seamless"):
        cmd.append("--seamless")
    if config.get_property("working-size") > 0:
        cmd += ["--working-size", str(config.get_property("working-size"))]
    return cmd


def run_worker(cmd, cfg):
    """Runs the engine out of process and streams its progress into GIMP's progress bar."""
    env = dict(os.environ)
    if cfg.get("pythonpath"):
        env["PYTHONPATH"] = cfg["pythonpath"] + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONHOME", None)
    log = open(log_path(), "w")
    log.write("$ " + " ".join(cmd) + "\n")
    log.flush()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    except OSError as exc:
        log.close()
        raise PluginError(f"cannot start the worker Python ({exc.strerror}); run 'python3 install.py' again") from exc
    error = None
    try:
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "progress":
                eta = event.get("eta")
                eta_text = f", about {int(eta // 60)}:{int(eta % 60):02d} left" if eta is not None else ""
                Gimp.progress_set_text(f"Style transfer: scale {event['scale']}/{event['scales']}, "
                                       f"step {event['step']}/{event['steps']}{eta_text}")
                Gimp.progress_update(min(1.0, float(event["done"])))
            elif event.get("event") == "error":
                error = event.get("message")
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    if code == 0:
        return
    if error:
        raise PluginError(error)
    if code < 0:
        raise PluginError(f"the style-transfer worker was stopped (signal {-code}); details in {log_path()}")
    if code in EXIT_MESSAGES:
        raise PluginError(f"{EXIT_MESSAGES[code]}; details in {log_path()}")
    raise PluginError(f"the style-transfer worker failed (exit {code}); details in {log_path()}")


def write_new_layer(image, source, region, rgb, alpha, name, has_selection):
    x, y, w, h = region
    grey = image.get_base_type() == Gimp.ImageBaseType.GRAY
    layer_type = Gimp.ImageType.GRAYA_IMAGE if grey else Gimp.ImageType.RGBA_IMAGE
    image.undo_group_start()
    try:
        layer = Gimp.Layer.new(image, name, w, h, layer_type, 100.0, Gimp.LayerMode.NORMAL)
        parent = source.get_parent()
        image.insert_layer(layer, parent, image.get_item_position(source))
        ok, ox, oy = source.get_offsets()
        layer.set_offsets(ox + x, oy + y)
        pixels = np.dstack([rgb, alpha]).astype(np.float32)
        buf = layer.get_buffer()
        buf.set(Gegl.Rectangle.new(0, 0, w, h), FLOAT_RGBA, pixels.tobytes())
        buf.flush()
        if has_selection:
            layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
        layer.update(0, 0, w, h)
    finally:
        image.undo_group_end()
    return layer


def style_transfer(procedure, run_mode, image, drawables, config, data):
    try:
        if run_mode == Gimp.RunMode.INTERACTIVE:
            gi.require_version("GimpUi", "3.0")
            from gi.repository import GimpUi

            GimpUi.init(PROC_NAME)
            dialog = GimpUi.ProcedureDialog.new(procedure, config, "Style Transfer")
            dialog.get_scale_entry("strength", 1.0)  # sliders rather than bare spin buttons
            dialog.get_scale_entry("style-blend", 1.0)
            dialog.fill_box("advanced-box", ["working-size", "style-scale", "seed", "device", "style-file-2", "style-blend"])
            expander = dialog.fill_expander("advanced", None, False, "advanced-box")
            expander.set_label("Advanced")
            dialog.fill(["style-file", "strength", "preserve-colors", "seamless", "quality", "advanced"])
            ok = dialog.run()
            dialog.destroy()
            if not ok:
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        return _run(procedure, image, drawables, config)
    except PluginError as exc:
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(str(exc)))
    except Exception as exc:  # never let an exception escape: GIMP would show no message at all
        trace = traceback.format_exc()
        try:
            with open(log_path(), "a") as fh:
                fh.write(trace)
        except OSError:
            pass
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                           GLib.Error(f"style transfer failed: {exc}; details in {log_path()}"))


def _run(procedure, image, drawables, config):
    if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
        raise PluginError("indexed images are not supported; use Image > Mode > RGB first")
    if len(drawables) != 1:
        raise PluginError(f"{len(drawables)} layers are selected; select exactly one layer")
    source = drawables[0]
    if not isinstance(source, Gimp.Layer):
        raise PluginError("select a layer (not a channel or mask) to stylise")
    style = config.get_property("style-file")
    if style is None or style.get_path() is None:
        raise PluginError("no style image chosen; pick one in the dialog (or pass style-file)")
    style_paths = [style.get_path()]
    blend = None
    style2 = config.get_property("style-file-2")
    if style2 is not None and style2.get_path():
        style_paths.append(style2.get_path())
        blend = config.get_property("style-blend")
    for path in style_paths:
        if not os.path.isfile(path):
            raise PluginError(f"{path}: style image not found; choose another file")
    cfg = load_worker_config()
    has_selection = not Gimp.Selection.is_empty(image)
    pixels, region = read_region(source)
    Gimp.progress_init("Style transfer: starting")
    workdir = tempfile.mkdtemp(prefix="stylecore-gimp-")  # private (0700), removed whatever happens
    try:
        content = os.path.join(workdir, "content.npy")
        output = os.path.join(workdir, "result.npy")
        np.save(content, pixels[..., :3])
        run_worker(worker_command(cfg, content, style_paths, blend, output, config), cfg)
        result = np.load(output, allow_pickle=False)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        Gimp.progress_end()
    name = "Style: " + os.path.splitext(os.path.basename(style_paths[0]))[0]
    write_new_layer(image, source, region, result[..., :3], pixels[..., 3], name, has_selection)
    Gimp.displays_flush()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


class StyleTransfer(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROC_NAME]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, style_transfer, None)
        proc.set_image_types("RGB*, GRAY*")
        proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        proc.set_menu_label("Style Transfer...")
        proc.add_menu_path("<Image>/Filters")
        proc.set_documentation(
            "Repaint the layer in the style of a painting",
            "Neural style transfer (Gatys et al.) with stylecore. The result is a new layer above the "
            "selected one, masked to the selection if there is one; the original layer is not changed.",
            name)
        proc.set_attribution("stylecore developers", "stylecore developers", "2026")
        rw = GObject.ParamFlags.READWRITE
        proc.add_file_argument("style-file", "_Style image", "The painting whose style to apply",
                               Gimp.FileChooserAction.OPEN, True, None, rw)
        proc.add_double_argument("strength", "S_trength", "How strongly the style repaints the layer (percent)",
                                 0.0, 100.0, 70.0, rw)
        proc.add_boolean_argument("preserve-colors", "Preserve _colors", "Keep the layer's colours; transfer only brushwork",
                                  False, rw)
        proc.add_choice_argument("quality", "_Quality", "Draft is a quick preview; best takes longest",
                                 _choice(QUALITIES), "balanced", rw)
        proc.add_int_argument("working-size", "_Working size (0 = automatic)", "Long side in pixels of the finest optimised scale (0: preset's)",
                              0, 8192, 0, rw)
        proc.add_double_argument("style-scale", "Brush s_cale", "Brush size relative to the image (1: the painting's own)",
                                 0.1, 4.0, 1.0, rw)
        proc.add_int_argument("seed", "S_eed", "Same seed, same result", 0, 2**31 - 1, 0, rw)
        proc.add_choice_argument("device", "_Device", "Where the computation runs", _choice(DEVICES), "auto", rw)
        proc.add_file_argument("style-file-2", "Second st_yle (optional)", "A second painting to blend in",
                               Gimp.FileChooserAction.OPEN, True, None, rw)
        proc.add_double_argument("style-blend", "Second style _blend", "Share of the second style (percent)",
                                 0.0, 100.0, 50.0, rw)
        proc.add_boolean_argument("seamless", "Seamless _tile", "Make the result tile without seams (for textures)",
                                  False, rw)
        return proc


Gimp.main(StyleTransfer.__gtype__, sys.argv)
