"""Renderers: plain data in, text out. One module per format."""
