"""A JPEG array-to-bytes codec for zarr v3, used for the `rgb` cue in lossy mode.

A chunk of shape (..., H, W, 3) uint8 is stored as one JPEG of the (n * H, W) image its leading
dimensions stack into; chunks hold one frame in dvt's layout. Registered as "dvt.jpeg": a store
written with it opens wherever dvt_prep is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.buffer import Buffer, NDBuffer
from zarr.core.common import JSON, parse_named_configuration
from zarr.registry import register_codec

if TYPE_CHECKING:
    from typing import Self

    from zarr.core.array_spec import ArraySpec

CODEC_NAME = "dvt.jpeg"


@dataclass(frozen=True)
class JpegCodec(ArrayBytesCodec):
    """JPEG with 4:4:4 chroma (the frames come from 4:2:0 video; subsampling twice costs PSNR)."""

    is_fixed_size = False
    quality: int = 95

    @classmethod
    def from_dict(cls, data: dict[str, JSON]) -> Self:
        _, configuration = parse_named_configuration(data, CODEC_NAME)
        return cls(**(configuration or {}))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, JSON]:
        return {"name": CODEC_NAME, "configuration": {"quality": self.quality}}

    def validate(self, *, shape, dtype, chunk_grid) -> None:  # type: ignore[override]
        if len(shape) < 3 or shape[-1] != 3:
            raise ValueError(f"{CODEC_NAME} needs arrays of shape (..., H, W, 3), got {shape}")

    def _encode_sync(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        array = np.asarray(chunk_array.as_numpy_array(), dtype=np.uint8)
        image = np.ascontiguousarray(array.reshape(-1, array.shape[-2], 3)[..., ::-1])
        ok, encoded = cv2.imencode(".jpg", image, [
            cv2.IMWRITE_JPEG_QUALITY, self.quality,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
        ])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return chunk_spec.prototype.buffer.from_bytes(encoded.tobytes())

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        array = decode_jpeg(chunk_bytes.to_bytes(), chunk_spec.shape)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(array)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        return self._encode_sync(chunk_array, chunk_spec)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        return self._decode_sync(chunk_bytes, chunk_spec)

    def compute_encoded_size(self, input_byte_length: int, _chunk_spec: ArraySpec) -> int:
        raise NotImplementedError  # variable size


def decode_jpeg(data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """A chunk's JPEG bytes back to its uint8 array of `shape` (..., H, W, 3), RGB."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("corrupt JPEG chunk")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB).reshape(shape)


register_codec(CODEC_NAME, JpegCodec)
