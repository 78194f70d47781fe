"""What runs inside GIMP and what crosses between the plug-in and the worker: standard library only.

GIMP's own Python (no numpy, no torch on Windows, macOS, Flatpak and AppImage) imports this package: install.py
copies it, with stylecore/__init__.py, beside the plug-in. tests/test_architecture.py keeps it standard library only.
"""
