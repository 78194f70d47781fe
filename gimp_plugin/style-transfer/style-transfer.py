#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters > Style Transfer...

Thin by design, and standard library + gi only (GIMP's own Python has no numpy on Windows, macOS, Flatpak
and AppImage). It reads the layer at full precision, shows the dialog, sends the pixels to a warm stylecore
worker (worker_client.py; the interpreter install.py recorded), turns the worker's progress events into
GIMP's progress bar, and writes the float result as a new layer above the source, in one undo group. The
source layer is never written to. Several selected layers are refused (one layer per run keeps the undo step
and the progress bar meaningful).
"""

import os
import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from worker_client import CONFIG_NAME, PluginError, Worker, add_alpha, channel, read_npy, write_npy  # noqa: E402

PROC_NAME = "python-fu-style-transfer"
CONFIG_PATH = os.path.join(HERE, CONFIG_NAME)
QUALITIES = (("draft", "Draft (quick preview)"), ("balanced", "Balanced"), ("best", "Best (slow)"))
DEVICES = (("auto", "Automatic (GPU if available)"), ("cpu", "CPU"), ("cuda", "NVIDIA GPU (CUDA)"), ("mps", "Apple GPU (MPS)"))
RGBA_FLOAT = "R'G'B'A float"  # non-linear sRGB, as the engine expects; float so no 8-bit rounding either way
RGB_FLOAT = "R'G'B' float"
_WORKER = None  # one warm worker per plug-in process (the dialog's preview and the final run share it)


def shared_worker():
    """The plug-in process's worker, started on first use."""
    global _WORKER
    if _WORKER is None or _WORKER.proc.poll() is not None:
        _WORKER = Worker.start(CONFIG_PATH)
    return _WORKER


_REQUESTS = []


def next_request_id():
    _REQUESTS.append(None)
    return f"run{len(_REQUESTS)}"


def stylize_request(request_id, content, styles, settings, output):
    """The worker request (CONTRACTS.md section 2) for a content .npy, [(path, weight)] styles and dialog settings."""
    working_size = settings.get("working-size") or None
    return {
        "op": "stylize",
        "id": request_id,
        "content": content,
        "styles": [{"path": path, "weight": weight} for path, weight in styles],
        "options": {
            "strength": float(settings["strength"]),
            "preserve_colors": bool(settings["preserve-colors"]),
            "style_scale": float(settings["style-scale"]),
            "preset": settings["quality"],
            "working_size": working_size,
            "seed": int(settings["seed"]),
            "seamless": bool(settings["seamless"]),
            "device": settings["device"],
        },
        "output": output,
    }


def style_weights(blend):
    """Weights of the first and second style for a second-style share in percent."""
    return (100.0 - blend) / 100.0, blend / 100.0


def progress_text(event):
    eta = event.get("eta")
    eta_text = f", about {int(eta // 60)}:{int(eta % 60):02d} left" if isinstance(eta, (int, float)) else ""
    return f"Style transfer: scale {event.get('scale', '?')}/{event.get('scales', '?')}, step {event.get('step', '?')}/{event.get('steps', '?')}{eta_text}"


SETTINGS = ("strength", "preserve-colors", "style-scale", "quality", "working-size", "seed", "seamless", "device", "style-blend")


def _choice(options):
    choice = Gimp.Choice.new()
    for i, (nick, label) in enumerate(options):
        choice.add(nick, i, label, "")
    return choice


def read_region(drawable):
    """The layer's pixels inside the selection's bounding box, as R'G'B'A float32 bytes, plus that box."""
    ok, x, y, w, h = drawable.mask_intersect()
    if not ok or w == 0 or h == 0:
        raise PluginError("the selection does not touch this layer; select part of the layer or Select > None")
    raw = drawable.get_buffer().get(Gegl.Rectangle.new(x, y, w, h), 1.0, RGBA_FLOAT, Gegl.AbyssPolicy.CLAMP)
    return bytes(raw), (x, y, w, h)


def check_style_layer(layer):
    if not isinstance(layer, Gimp.Layer):
        raise PluginError("the style layer is not a layer; pick a layer of an open image")
    if layer.get_image().get_base_type() == Gimp.ImageBaseType.INDEXED:
        raise PluginError(f"style layer '{layer.get_name()}' belongs to an indexed image; use Image > Mode > RGB on it first")


def write_style_layer(layer, path):
    """A layer used as the style: its whole extent as R'G'B' float32 (its alpha is ignored)."""
    w, h = layer.get_width(), layer.get_height()
    raw = layer.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, RGB_FLOAT, Gegl.AbyssPolicy.CLAMP)
    write_npy(path, w, h, 3, bytes(raw))


def style_layer_name(layer):
    """The style image's file name (without extension) and, when it has several layers, the layer's name."""
    image = layer.get_image()
    files = (image.get_file(), image.get_imported_file(), image.get_xcf_file())  # a JPEG just opened has only the second
    names = [f.get_basename() for f in files if f is not None and f.get_basename()]
    if not names:
        return layer.get_name()
    stem = os.path.splitext(names[0])[0]
    return stem if len(image.get_layers()) == 1 else f"{stem} ({layer.get_name()})"


def write_new_layer(image, source, region, rgba, name, has_selection):
    """The result as a new layer above the source; the layer takes the image's precision, so floats stay floats."""
    x, y, w, h = region
    grey = image.get_base_type() == Gimp.ImageBaseType.GRAY
    layer_type = Gimp.ImageType.GRAYA_IMAGE if grey else Gimp.ImageType.RGBA_IMAGE
    image.undo_group_start()
    try:
        layer = Gimp.Layer.new(image, name, w, h, layer_type, 100.0, Gimp.LayerMode.NORMAL)
        image.insert_layer(layer, source.get_parent(), image.get_item_position(source))
        ok, ox, oy = source.get_offsets()
        layer.set_offsets(ox + x, oy + y)
        buf = layer.get_buffer()
        buf.set(Gegl.Rectangle.new(0, 0, w, h), RGBA_FLOAT, rgba)
        buf.flush()
        if has_selection:
            layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
        layer.update(0, 0, w, h)
    finally:
        image.undo_group_end()
    return layer


def _styles(config):
    """[(path or layer, weight)] of the style inputs and the new layer's name; a style layer wins over style-file.

    Checked before the worker starts, so a wrong argument costs no model load."""
    style_layer = config.get_property("style-layer")
    if style_layer is not None:
        check_style_layer(style_layer)
        first, name = style_layer, style_layer_name(style_layer)
    else:
        style = config.get_property("style-file")
        if style is None or style.get_path() is None:
            raise PluginError("no style image chosen; pick one in the dialog (or pass style-file or style-layer)")
        first = style.get_path()
        if not os.path.isfile(first):
            raise PluginError(f"{first}: style image not found; choose another file")
        name = os.path.splitext(os.path.basename(first))[0]
    style2 = config.get_property("style-file-2")
    if style2 is None or not style2.get_path():
        return [(first, 1.0)], name
    if not os.path.isfile(style2.get_path()):
        raise PluginError(f"{style2.get_path()}: second style image not found; choose another file")
    w1, w2 = style_weights(config.get_property("style-blend"))
    return [(first, w1), (style2.get_path(), w2)], name


def _style_files(styles, workdir, request_id):
    """Style layers become float32 .npy files in the worker's private dir; paths stay as they are."""
    files = []
    for i, (style, weight) in enumerate(styles):
        if not isinstance(style, str):
            path = os.path.join(workdir, f"style{i}-{request_id}.npy")
            write_style_layer(style, path)
            style = path
        files.append((style, weight))
    return files


def _on_event(event):
    if event.get("event") == "progress":
        Gimp.progress_set_text(progress_text(event))
        Gimp.progress_update(min(1.0, float(event.get("done", 0.0))))


def _run(procedure, image, drawables, config):
    if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
        raise PluginError("indexed images are not supported; use Image > Mode > RGB first")
    if len(drawables) != 1:
        raise PluginError(f"{len(drawables)} layers are selected; select exactly one layer")
    source = drawables[0]
    if not isinstance(source, Gimp.Layer):
        raise PluginError("select a layer (not a channel or mask) to stylize")
    styles, name = _styles(config)
    has_selection = not Gimp.Selection.is_empty(image)
    pixels, region = read_region(source)
    Gimp.progress_init("Style transfer: starting")
    try:
        worker = shared_worker()
        request_id = next_request_id()
        styles = _style_files(styles, worker.workdir, request_id)
        content = os.path.join(worker.workdir, f"content-{request_id}.npy")
        output = os.path.join(worker.workdir, f"result-{request_id}.npy")
        write_npy(content, region[2], region[3], 4, pixels)
        settings = {key: config.get_property(key) for key in SETTINGS}
        worker.run(stylize_request(request_id, content, styles, settings, output), _on_event)
        width, height, channels, result = read_npy(output)
        for path in [content, output] + [p for p, _ in styles if os.path.dirname(p) == worker.workdir]:
            os.unlink(path)
    finally:
        Gimp.progress_end()
    if (width, height) != region[2:]:
        raise PluginError(f"the worker returned {width}x{height} pixels for a {region[2]}x{region[3]} layer; {worker.details()}")
    if channels == 3:
        result = add_alpha(result, channel(pixels, 4, 3))
    elif channels != 4:
        raise PluginError(f"the worker returned {channels} channels; {worker.details()}")
    write_new_layer(image, source, region, result, "Style: " + name, has_selection)
    Gimp.displays_flush()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def _preview_pixels(drawables):
    import preview  # GTK: loaded only with the dialog

    if len(drawables) != 1 or not isinstance(drawables[0], Gimp.Layer):
        raise PluginError("select exactly one layer to see a preview")
    return preview.layer_pixels(drawables[0])


def _preview_request(config):
    """The preview's request: the final run's for the current settings (preview.py sets its own size and schedule)."""

    def build(worker, request_id, content, output):
        styles, _ = _styles(config)
        settings = {key: config.get_property(key) for key in SETTINGS}
        return stylize_request(request_id, content, _style_files(styles, worker.workdir, "preview"), settings, output)

    return build


def _dialog(procedure, config, drawables):
    gi.require_version("GimpUi", "3.0")
    gi.require_version("Gtk", "3.0")
    import preview  # GTK: loaded only with the dialog
    from gi.repository import GimpUi, Gtk

    GimpUi.init(PROC_NAME)
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "Style Transfer")
    dialog.get_scale_entry("strength", 1.0)  # sliders rather than bare spin buttons
    dialog.get_scale_entry("style-blend", 1.0)
    dialog.fill_box("advanced-box", ["working-size", "style-scale", "seed", "device", "style-file-2", "style-blend"])
    expander = dialog.fill_expander("advanced", None, False, "advanced-box")
    expander.set_label("Advanced")
    dialog.fill_box(
        "options-box", ["style-file", "style-layer", "strength", "preserve-colors", "seamless", "quality", "advanced"]
    )
    row = dialog.fill_box("main-row", ["options-box"])  # the options, then the live preview to their right
    row.set_orientation(Gtk.Orientation.HORIZONTAL)
    row.set_spacing(12)
    pane = preview.PreviewPane(row, config, shared_worker, lambda: _preview_pixels(drawables), _preview_request(config))
    dialog.fill(["main-row"])
    ok = dialog.run()
    if ok:  # the final run reuses the warm worker (shared_worker), with no preview left running in it
        pane.stop()
    # On Cancel nothing waits for the preview: the plug-in exits, and the worker with it (stdin EOF, guard process).
    dialog.destroy()
    return ok


def style_transfer(procedure, run_mode, image, drawables, config, data):
    log_path = None
    try:
        if run_mode == Gimp.RunMode.INTERACTIVE and not _dialog(procedure, config, drawables):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        return _run(procedure, image, drawables, config)
    except PluginError as exc:
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(str(exc)))
    except Exception as exc:  # never let an exception escape: GIMP would show no message at all
        trace = traceback.format_exc()
        sys.stderr.write(trace)
        if _WORKER is not None and _WORKER.log_path:
            log_path = _WORKER.log_path
            try:
                with open(log_path, "a", encoding="utf-8") as fh:
                    fh.write(trace)
            except OSError:
                log_path = None
        where = f"; details in {log_path}" if log_path else ""
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(f"style transfer failed: {exc}{where}"))


class StyleTransfer(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROC_NAME]

    def do_set_i18n(self, name):
        return False

    def do_quit(self):
        if _WORKER is not None:
            _WORKER.close()

    def do_create_procedure(self, name):
        proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, style_transfer, None)
        proc.set_image_types("RGB*, GRAY*")
        proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        proc.set_menu_label("Style Transfer...")
        proc.add_menu_path("<Image>/Filters")
        proc.set_documentation(
            "Repaint the layer in the style of a painting",
            "Neural style transfer (Gatys et al.) with stylecore. The result is a new layer above the "
            "selected one, masked to the selection if there is one; the original layer is not changed. "
            "The style is an image file, or a layer of any open image (style-layer, used instead of style-file).",
            name,
        )
        proc.set_attribution("stylecore developers", "stylecore developers", "2026")
        rw = GObject.ParamFlags.READWRITE
        proc.add_file_argument(
            "style-file", "_Style image", "The painting whose style to apply", Gimp.FileChooserAction.OPEN, True, None, rw
        )
        proc.add_double_argument(
            "strength", "S_trength", "How strongly the style repaints the layer (percent)", 0.0, 100.0, 70.0, rw
        )
        proc.add_boolean_argument(
            "preserve-colors", "Preserve _colors", "Keep the layer's colours; transfer only brushwork", False, rw
        )
        proc.add_choice_argument(
            "quality", "_Quality", "Draft is a quick preview; best takes longest", _choice(QUALITIES), "balanced", rw
        )
        proc.add_int_argument(
            "working-size",
            "_Working size (0 = automatic)",
            "Long side in pixels of the finest optimised scale (0: preset's)",
            0,
            8192,
            0,
            rw,
        )
        proc.add_double_argument(
            "style-scale", "Brus_h scale", "Brush size relative to the image (1: the painting's own)", 0.1, 4.0, 1.0, rw
        )
        proc.add_int_argument("seed", "S_eed", "Same seed, same result", 0, 2**31 - 1, 0, rw)
        proc.add_choice_argument("device", "_Device", "Where the computation runs", _choice(DEVICES), "auto", rw)
        proc.add_file_argument(
            "style-file-2",
            "Second st_yle (optional)",
            "A second painting to blend in",
            Gimp.FileChooserAction.OPEN,
            True,
            None,
            rw,
        )
        proc.add_double_argument(
            "style-blend", "Second style _blend", "Share of the second style (percent)", 0.0, 100.0, 50.0, rw
        )
        proc.add_boolean_argument("seamless", "Seamless t_ile", "Make the result tile without seams (for textures)", False, rw)
        # New arguments go at the end only: scripts that call the procedure positionally keep working.
        proc.add_layer_argument(
            "style-layer",
            "Style _layer (optional)",
            "A layer of any open image to take the style from, instead of the style image (its alpha is ignored)",
            True,
            rw,
        )
        return proc


if __name__ == "__main__":
    Gimp.main(StyleTransfer.__gtype__, sys.argv)
