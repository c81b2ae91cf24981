"""The publisher side of over-the-air updates: keys, the TUF repository and release bundles.

``deploy/ota`` is its command line; deploy/OTA.md is the operator's guide. Nothing here ships to
a device: the device side is ``device.update``.
"""
