"""Direct reads of dvt's sharded arrays on a local disk, without zarr's per-call machinery.

Every array of a store part is one zarr v3 shard: the inner chunks (a few frames each) back to
back, then the shard index, (offset, nbytes) little-endian uint64 per chunk and a CRC32C, as
the sharding codec's specification lays out. zarr-python 3 costs about 1 ms per read call (an
asyncio round trip, the index read again, a codec pipeline) — a large share of a training
clip's read time. `ShardFile` reads the index once and then each chunk with one `pread` and
one decode. It takes only the layout dvt writes (checked from the array's metadata) and
returns None otherwise, so callers fall back to zarr; tests check it returns zarr's values.
"""

from __future__ import annotations

import os

import numpy as np
import zarr
from numcodecs import CRC32C, blosc
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec
from zarr.codecs.sharding import ShardingCodecIndexLocation

from dvt_prep.codecs import JpegCodec, decode_jpeg

_MISSING = np.iinfo(np.uint64).max  # an absent chunk: offset and nbytes both 2^64 - 1


class ShardFile:
    """Rows (frames) of one single-shard array read straight from its file."""

    def __init__(self, path: str, shape: tuple[int, ...], dtype: np.dtype,
                 chunk_shape: tuple[int, ...], jpeg: bool) -> None:
        self.path, self.shape, self.dtype = path, shape, dtype
        self.chunk_shape, self.jpeg = chunk_shape, jpeg
        self._index: np.ndarray | None = None

    @classmethod
    def open(cls, array: zarr.Array, folder: str) -> ShardFile | None:
        """A reader for `array`, stored in `folder` on a local disk, when its layout is dvt's
        (one shard; inner codecs bytes + blosc, or dvt.jpeg; index at the end, bytes + CRC32C);
        else None."""
        metadata = array.metadata
        codecs = getattr(metadata, "codecs", ())
        if len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec):
            return None
        sharding = codecs[0]
        if tuple(metadata.chunk_grid.chunk_shape) < tuple(array.shape) or \
                sharding.index_location != ShardingCodecIndexLocation.end:
            return None
        index_codecs = sharding.index_codecs
        if len(index_codecs) != 2 or not isinstance(index_codecs[1], Crc32cCodec):
            return None
        inner = sharding.codecs
        jpeg = len(inner) == 1 and isinstance(inner[0], JpegCodec)
        blosc_bytes = (len(inner) == 2 and isinstance(inner[0], BytesCodec)
                       and isinstance(inner[1], BloscCodec))
        if not (jpeg or blosc_bytes):
            return None
        key = metadata.chunk_key_encoding.encode_chunk_key((0,) * len(array.shape))
        path = os.path.join(folder, *key.split("/"))
        dtype = np.dtype(array.dtype).newbyteorder("<")
        return cls(path, tuple(array.shape), dtype, tuple(sharding.chunk_shape), jpeg)

    def _chunk_index(self) -> np.ndarray:
        if self._index is None:
            chunks = -(-self.shape[0] // self.chunk_shape[0])
            size = chunks * 16 + 4
            with open(self.path, "rb") as handle:
                handle.seek(-size, os.SEEK_END)
                raw = handle.read(size)
            self._index = np.frombuffer(CRC32C().decode(raw), "<u8").reshape(chunks, 2)
        return self._index

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) in the disk dtype, as zarr's `array[start:stop]` gives them."""
        per = self.chunk_shape[0]
        stop = max(start, stop)
        if start == stop:
            return np.zeros((0, *self.shape[1:]), self.dtype)
        index = self._chunk_index()
        blocks = []
        with open(self.path, "rb") as handle:
            descriptor = handle.fileno()
            for chunk in range(start // per, (stop - 1) // per + 1):
                offset, nbytes = (int(v) for v in index[chunk])
                if offset == _MISSING and nbytes == _MISSING:
                    blocks.append(np.zeros(self.chunk_shape, self.dtype))
                    continue
                data = os.pread(descriptor, nbytes, offset)
                if self.jpeg:
                    blocks.append(decode_jpeg(data, self.chunk_shape))
                else:
                    block = np.empty(self.chunk_shape, self.dtype)  # writable, as zarr's
                    blosc.decompress(data, block)
                    blocks.append(block)
        first = (start // per) * per
        block = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
        return block[start - first: stop - first]
