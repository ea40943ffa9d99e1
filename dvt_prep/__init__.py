"""dvt_prep: decode H.264 with PyAV, extract motion cues, keep them in a zarr store."""

__version__ = "0.1.0"

from dvt_prep.errors import DvtError, InputError, StoreError, VideoError  # noqa: E402
from dvt_prep.flow import tvl1_flow  # noqa: E402
from dvt_prep.motion_vectors import motion_vectors  # noqa: E402
from dvt_prep.store import Store, StoreWriter, open_store  # noqa: E402

__all__ = [
    "DvtError", "InputError", "Store", "StoreError", "StoreWriter", "VideoError", "__version__",
    "motion_vectors", "open_store", "tvl1_flow",
]
