"""The cross-layer contract: the names and numbers that training, the runtime, the server and the extension share.

Defined here once; the model manifest, the OpenAPI document and the extension's
generated ``extension/lib/contract.js`` are derived from it.
"""

from __future__ import annotations

# Head-2 classes, in output channel order (the result's ``sources`` keys, the manifest's ``source_classes``).
SOURCE_CLASSES = ("authentic", "generated", "inpainted", "copy_moved", "spliced")
