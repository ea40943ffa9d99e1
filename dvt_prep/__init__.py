"""dvt_prep: decode H.264 with PyAV, extract motion cues, keep them in a zarr store."""

__version__ = "0.1.0"

import importlib  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402

from dvt_prep.errors import DvtError, InputError, StoreError, VideoError  # noqa: E402

# Imported on first use, so that `import dvt_prep` (and `dvt --help`) loads no av, cv2, zarr
# or torch.
_LAZY = {"tvl1_flow": "dvt_prep.flow", "Store": "dvt_prep.store_reader",
         "StoreWriter": "dvt_prep.store_writer", "open_store": "dvt_prep.store_reader"}

__all__ = [
    "DvtError", "InputError", "Store", "StoreError", "StoreWriter", "VideoError", "__version__",
    "motion_vectors", "open_store", "tvl1_flow",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dvt_prep' has no attribute {name!r}")


class _Package(types.ModuleType):
    """`dvt_prep.motion_vectors` is the function, as it was when this file imported it eagerly:
    importing the submodule of the same name binds the module here, and this setter ignores
    that binding (the submodule stays in sys.modules for `from dvt_prep.motion_vectors import`)."""

    @property
    def motion_vectors(self):
        from dvt_prep.motion_vectors import motion_vectors

        return motion_vectors

    @motion_vectors.setter
    def motion_vectors(self, _module) -> None:
        pass


sys.modules[__name__].__class__ = _Package
