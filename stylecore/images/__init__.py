"""Images in and out: any input to float32 sRGB, 16-bit files, the result and its checked, atomic save."""
