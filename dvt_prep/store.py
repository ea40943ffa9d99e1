"""The zarr v3 store of cues (docs/design.md §4), by idea:

- `store_layout`: the root, its parts, the consolidated index (`create_store`, `consolidate`,
  `delete_store`, `PARTS`, `INDEX`);
- `store_writer`: `StoreWriter`, which writes videos as committed parts;
- `store_reader`: `Store` and `open_store`, the read API;
- `store_settings`: the settings a store records and the check that runs never mix them
  (`prepare_store`, `check_settings`, `recorded_settings`, `settings_recorded`);
- `store_format` (how each array lies on disk) and `rgb_stream` (rgb as H.264).

This module gathers their public names, as `dvt_prep.store` has always offered them.
"""

from __future__ import annotations

from dvt_prep.store_layout import (
    INDEX,
    LAYOUT,
    PARTS,
    consolidate,
    create_store,
    delete_store,
)
from dvt_prep.store_reader import Store, open_store
from dvt_prep.store_settings import (
    check_settings,
    prepare_store,
    recorded_settings,
    settings_recorded,
)
from dvt_prep.store_writer import StoreWriter

__all__ = ["INDEX", "LAYOUT", "PARTS", "Store", "StoreWriter", "check_settings", "consolidate",
           "create_store", "delete_store", "open_store", "prepare_store", "recorded_settings",
           "settings_recorded"]
