#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters > Style Transfer...

Thin by design, and standard library + gi only (GIMP's own Python has no numpy on Windows, macOS, Flatpak
and AppImage). It reads the layer at full precision, shows the dialog, sends the pixels to a warm stylecore
worker (stylecore/protocol/client.py, through session.py; the interpreter install.py recorded), turns the worker's progress events into
GIMP's progress bar, and writes the float result as a new layer above the source, in one undo group. The
source layer is never written to. Several selected layers are refused (one layer per run keeps the undo step
and the progress bar meaningful). Bad arguments are a CALLING_ERROR, found before any worker starts.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # the plug-in's modules and the stdlib-only `stylecore.protocol` beside them
import arguments  # noqa: E402
import i18n  # noqa: E402
import job  # noqa: E402
from i18n import N_, _  # noqa: E402
from session import Session  # noqa: E402

from stylecore.protocol import host, messages, npy, pixels, ssh  # noqa: E402
from stylecore.protocol.client import Event  # noqa: E402
from stylecore.protocol.errors import BadInput, StylecoreError  # noqa: E402

PROC_NAME = "python-fu-style-transfer"
CONFIG_PATH = os.path.join(HERE, host.CONFIG_NAME)
RGBA_FLOAT = "R'G'B'A float"  # non-linear sRGB, as the engine expects; float so no 8-bit rounding either way
RGB_FLOAT = "R'G'B' float"


def read_region(drawable: Any, scale: float = 1.0) -> tuple[bytes, tuple[int, int, int, int], tuple[int, int]]:
    """The layer inside the selection's bounding box as R'G'B'A float32, scaled by GEGL: (bytes, (x, y, w, h) at full size, (w, h) scaled)."""
    ok, x, y, w, h = drawable.mask_intersect()
    if not ok or w == 0 or h == 0:
        raise BadInput(_("the selection does not touch this layer; select part of the layer or Select > None"))
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    rect = Gegl.Rectangle.new(round(x * scale), round(y * scale), sw, sh)
    raw = drawable.get_buffer().get(rect, scale, RGBA_FLOAT, Gegl.AbyssPolicy.CLAMP)
    return bytes(raw), (x, y, w, h), (sw, sh)


def preview_pixels(drawables: Sequence[Any]) -> tuple[int, int, bytes]:
    """(w, h, R'G'B'A float32) of the one selected layer, at most PREVIEW_SIDE pixels on its long side."""
    source = one_layer(drawables)
    ok, _x, _y, w, h = source.mask_intersect()
    data, _region, (sw, sh) = read_region(source, min(1.0, job.PREVIEW_SIDE / max(w, h, 1)))
    return sw, sh, data


def one_layer(drawables: Sequence[Any]) -> Any:
    if len(drawables) != 1:
        raise BadInput(_("{n} layers are selected; select exactly one layer").format(n=len(drawables)))
    if not isinstance(drawables[0], Gimp.Layer):
        raise BadInput(_("select a layer (not a channel or mask) to stylize"))
    return drawables[0]


def check_style_layer(layer: Any) -> None:
    if not isinstance(layer, Gimp.Layer):
        raise BadInput(_("the style layer is not a layer; pick a layer of an open image"))
    if layer.get_image().get_base_type() == Gimp.ImageBaseType.INDEXED:
        raise BadInput(
            _("style layer '{name}' belongs to an indexed image; use Image > Mode > RGB on it first").format(
                name=layer.get_name()
            )
        )


def style_layer_pixels(layer: Any) -> pixels.Pixels:
    """A layer used as the style: its whole extent as R'G'B' float32 (its alpha is ignored)."""
    w, h = layer.get_width(), layer.get_height()
    raw = layer.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, RGB_FLOAT, Gegl.AbyssPolicy.CLAMP)
    return pixels.Pixels(w, h, 3, "f32", bytes(raw))


def write_style_layer(layer: Any, path: str) -> None:
    image = style_layer_pixels(layer)
    npy.write_npy(path, image.width, image.height, 3, image.data)


def style_layer_name(layer: Any) -> str:
    """The style image's file name (without extension) and, when it has several layers, the layer's name."""
    image = layer.get_image()
    files = (image.get_file(), image.get_imported_file(), image.get_xcf_file())  # a JPEG just opened has only the second
    names = [f.get_basename() for f in files if f is not None and f.get_basename()]
    if not names:
        return layer.get_name()
    stem = os.path.splitext(names[0])[0]
    return stem if len(image.get_layers()) == 1 else f"{stem} ({layer.get_name()})"


def write_new_layer(
    image: Any, source: Any, region: tuple[int, int, int, int], rgba: bytes, name: str, has_selection: bool
) -> Any:
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


def styles_of(config: Any) -> tuple[list[tuple[Any, float]], str]:
    """[(path or layer, weight)] of the style inputs and the new layer's name; a style layer wins over style-file.

    Checked before the worker starts, so a wrong argument costs no model load."""
    style_layer = config.get_property("style-layer")
    if style_layer is not None:
        check_style_layer(style_layer)
        first, name = style_layer, style_layer_name(style_layer)
    else:
        style = config.get_property("style-file")
        if style is None or style.get_path() is None:
            raise BadInput(_("no style image chosen; pick one in the dialog (or pass style-file or style-layer)"))
        first = style.get_path()
        if not os.path.isfile(first):
            raise BadInput(_("{path}: style image not found; choose another file").format(path=first))
        name = os.path.splitext(os.path.basename(first))[0]
    style2 = config.get_property("style-file-2")
    if style2 is None or not style2.get_path():
        return [(first, 1.0)], name
    if not os.path.isfile(style2.get_path()):
        raise BadInput(_("{path}: second style image not found; choose another file").format(path=style2.get_path()))
    w1, w2 = job.style_weights(config.get_property("style-blend"))
    return [(first, w1), (style2.get_path(), w2)], name


def run_on_of(config: Any) -> ssh.Target | None:
    return arguments.run_on(config.get_property)


def options_of(config: Any) -> dict[str, Any]:
    return arguments.options_from(config.get_property)


def style_files(session: Session, styles: Sequence[tuple[Any, float]]) -> list[tuple[messages.Source, float]]:
    """Style layers become float32 .npy files in the worker's private dir (once per worker); paths stay as they are.

    For a remote worker both travel in-band: a layer's pixels, a file's own bytes."""
    files = []
    remote_worker = session.spawn().remote
    for style, weight in styles:
        if remote_worker:
            if isinstance(style, str):
                style = messages.EncodedFile.read(style, _("style image"))
            else:
                style = style_layer_pixels(style)
        elif not isinstance(style, str):
            style = session.style_file(style.get_id(), functools.partial(write_style_layer, style))
        files.append((style, weight))
    return files


def on_progress(event: Event) -> None:
    if event.kind == messages.PROGRESS:
        progress = event.progress()
        Gimp.progress_set_text(job.progress_text(progress))
        Gimp.progress_update(min(1.0, max(0.0, progress.done)))


class StyleTransfer(Gimp.PlugIn):
    """The plug-in; its session (the warm worker, request ids, style files) lives as long as this process."""

    def session(self) -> Session:
        if getattr(self, "_session", None) is None:
            self._session = Session(CONFIG_PATH)
        return self._session

    def do_query_procedures(self) -> list[str]:
        return [PROC_NAME]

    def do_set_i18n(self, name: str) -> tuple[bool, str | None, str | None]:
        return i18n.gimp_i18n()

    def do_quit(self) -> None:
        if getattr(self, "_session", None) is not None:
            self._session.close()

    def do_create_procedure(self, name: str) -> Any:
        proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, None)
        proc.set_image_types("RGB*, GRAY*")
        proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        proc.set_menu_label(_(N_("_Style Transfer...")))
        proc.add_menu_path("<Image>/Filters")
        proc.set_documentation(
            _("Repaint the layer in the style of a painting"),
            _(
                "Neural style transfer (Gatys et al.) with stylecore. The result is a new layer above the "
                "selected one, masked to the selection if there is one; the original layer is not changed. "
                "The style is an image file, or a layer of any open image (style-layer, used instead of style-file)."
            ),
            name,
        )
        proc.set_attribution("stylecore developers", "stylecore developers", "2026")
        for arg in arguments.arguments():
            add_argument(proc, arg)
        return proc

    def run(self, procedure: Any, run_mode: Any, image: Any, drawables: Sequence[Any], config: Any, data: Any) -> Any:
        try:
            if run_mode == Gimp.RunMode.INTERACTIVE and not self.dialog(procedure, config, drawables):
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
            self.stylize(image, drawables, config)
            return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())
        except BadInput as exc:  # bad arguments, found before any worker starts
            return failure(procedure, Gimp.PDBStatusType.CALLING_ERROR, str(exc))
        except StylecoreError as exc:
            return failure(procedure, Gimp.PDBStatusType.EXECUTION_ERROR, str(exc))
        except Exception as exc:  # never let an exception escape: GIMP would show no message at all
            where = self.log_trace(traceback.format_exc())
            message = _("style transfer failed: {error}").format(error=exc) + where
            return failure(procedure, Gimp.PDBStatusType.EXECUTION_ERROR, message)

    def log_trace(self, trace: str) -> str:
        sys.stderr.write(trace)
        log_path = self.session().log_path()
        if not log_path:
            return ""
        try:
            with open(log_path, "a", encoding="utf-8") as fh:
                fh.write(trace)
        except OSError:
            return ""
        return _("; details in {path}").format(path=log_path)

    def stylize(self, image: Any, drawables: Sequence[Any], config: Any) -> None:
        if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
            raise BadInput(_("indexed images are not supported; use Image > Mode > RGB first"))
        source = one_layer(drawables)
        styles, name = styles_of(config)
        options = options_of(config)
        has_selection = not Gimp.Selection.is_empty(image)
        target = run_on_of(config)
        layer, region, _size = read_region(source)
        Gimp.progress_init(_("Style transfer: starting"))
        try:
            session = self.session()
            session.run_on(target)
            worker = session.ready_worker()
            request_id = session.next_id("run")
            content = session.content(f"content-{request_id}.npy", region[2], region[3], 4, layer)
            output = session.output(f"result-{request_id}.npy")
            request, payload = job.build(request_id, content, style_files(session, styles), options, output)
            event = worker.run(request, payload, on_progress)
            try:
                width, height, channels, result = event.pixels()
            except ValueError as exc:
                raise StylecoreError(_("the result did not arrive whole ({error}); run again").format(error=exc)) from None
            for path in (content, output):
                if isinstance(path, str):
                    os.unlink(path)
        finally:
            Gimp.progress_end()
        if (width, height) != region[2:]:
            raise StylecoreError(
                _("the worker returned {w}x{h} pixels for a {lw}x{lh} layer; {details}").format(
                    w=width, h=height, lw=region[2], lh=region[3], details=worker.details()
                )
            )
        if channels == 3:
            result = npy.add_alpha(result, npy.channel(layer, 4, 3))
        elif channels != 4:
            raise StylecoreError(_("the worker returned {n} channels; {details}").format(n=channels, details=worker.details()))
        write_new_layer(image, source, region, result, _("Style: {name}").format(name=name), has_selection)
        Gimp.displays_flush()

    def dialog(self, procedure: Any, config: Any, drawables: Sequence[Any]) -> bool:
        gi.require_version("GimpUi", "3.0")
        gi.require_version("Gtk", "3.0")
        import preview  # GTK: loaded only with the dialog
        from gi.repository import GimpUi, Gtk

        GimpUi.init(PROC_NAME)
        dialog = GimpUi.ProcedureDialog.new(procedure, config, _("Style Transfer"))
        dialog.get_scale_entry("strength", 1.0)  # sliders rather than bare spin buttons
        dialog.get_scale_entry("style-blend", 1.0)
        dialog.fill_box("advanced-box", arguments.advanced())
        expander = dialog.fill_expander("advanced", None, False, "advanced-box")
        expander.set_label(_("Advanced"))
        dialog.fill_box("options-box", [*arguments.MAIN, "advanced"])
        row = dialog.fill_box("main-row", ["options-box"])  # the options, then the live preview to their right
        row.set_orientation(Gtk.Orientation.HORIZONTAL)
        row.set_spacing(12)
        session = self.session()

        session.run_on(run_on_of(config))

        def request(request_id: str, content: messages.Source, output: str | None) -> tuple[dict, bytes | None]:
            options = options_of(config)
            styles = style_files(session, styles_of(config)[0])
            return job.build(request_id, content, styles, options, output, session.spawn().workdir, preview=True)

        pane = preview.PreviewPane(row, config, session, lambda: preview_pixels(drawables), request)
        dialog.fill(["main-row"])
        ok = dialog.run()
        pane.stop()  # never waits: the final run skips whatever the preview still has on its way
        dialog.destroy()
        return ok


def failure(procedure: Any, status: Any, message: str) -> Any:
    """The procedure's return values for a failure, with the one-line message GIMP shows."""
    return procedure.new_return_values(status, GLib.Error.new_literal(Gimp.PlugIn.error_quark(), message, 0))


def add_argument(proc: Any, arg: arguments.Argument) -> None:
    """One arguments.Argument as a procedure argument."""
    rw = GObject.ParamFlags.READWRITE
    label, blurb = _(arg.label), _(arg.help)
    if arg.kind == "double":
        proc.add_double_argument(arg.name, label, blurb, arg.minimum, arg.maximum, arg.default, rw)
    elif arg.kind == "int":
        assert arg.minimum is not None and arg.maximum is not None, arg
        proc.add_int_argument(arg.name, label, blurb, int(arg.minimum), int(arg.maximum), arg.default, rw)
    elif arg.kind == "boolean":
        proc.add_boolean_argument(arg.name, label, blurb, arg.default, rw)
    elif arg.kind == "choice":
        choice = Gimp.Choice.new()
        for i, (nick, text) in enumerate(arg.choices):
            choice.add(nick, i, _(text), "")
        proc.add_choice_argument(arg.name, label, blurb, choice, arg.default, rw)
    elif arg.kind == "file":
        proc.add_file_argument(arg.name, label, blurb, Gimp.FileChooserAction.OPEN, True, None, rw)
    elif arg.kind == "layer":
        proc.add_layer_argument(arg.name, label, blurb, True, rw)
    elif arg.kind == "string":
        proc.add_string_argument(arg.name, label, blurb, arg.default, rw)
    else:
        raise ValueError(f"unknown argument kind {arg.kind}")


if __name__ == "__main__":
    Gimp.main(StyleTransfer.__gtype__, sys.argv)
