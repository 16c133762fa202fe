"""Pure renderers: plain values in, file text out. Nothing here imports pulumi."""
