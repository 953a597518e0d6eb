"""Data loading for vtg: annotation files, the sample record, video decoding and synthetic data.

Submodules are imported on use; importing this package stays light (no decord, no torch).
"""
