"""Pixels: photo bytes to a model-ready array, the leaf cut from its sheet, a photo made smaller for upload,
a chart as PNG."""
