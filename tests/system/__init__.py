"""System tests: the project against the real thing (arm64 under qemu-user, systemd in a VM).

Deselected by default; ``make system-test`` runs them. Images are cached outside the checkout
(``cache.cache_dir()``) and rebuilt when missing or when the recipe that made them changes.
"""
