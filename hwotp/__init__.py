"""Shared code of every hwotp service: config, server bootstrap, metrics,
image preprocessing and writer scoring. Generated stubs live in hwotp.v1."""
