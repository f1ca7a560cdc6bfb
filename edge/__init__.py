"""facegate: an offline face-access terminal for Raspberry Pi and Jetson."""

__version__ = "0.1.0"
