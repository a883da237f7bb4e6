"""aerotune: tuned U-Net segmentation of aerial imagery."""

__version__ = "0.1.0"
