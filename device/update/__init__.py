"""Signed over-the-air updates on the device: ``ticket-scanner update``.

One run refreshes The Update Framework metadata, downloads the newest release meant for this
device, builds it beside the running one, self-tests it, switches ``current`` atomically,
restarts the service and commits only once it is healthy, else switches back. Every step is
recorded first in a state file, so a kill or a power cut at any point is finished or undone by
the next run. deploy/OTA.md is the operator's guide; runner.py is the order of the steps.
"""
