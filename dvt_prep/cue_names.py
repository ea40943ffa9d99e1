"""The names the command line offers before anything heavy is imported (no av, cv2, zarr,
torch here): cues, cue grids, the default cue set, the cues `dvt viz` draws."""

CUE_NAMES = ("rgb", "mv", "md", "rgbr", "rgbd", "tvl1")
CUE_GRIDS = (1, 2, 4, 8, 16)
DEFAULT_CUES = ("rgb", "md", "rgbr", "rgbd")
VIZ_CUES = ("rgb", "mv", "md", "tvl1", "rgbr", "rgbd")
RGB_CODECS = ("h264", "jpeg", "lossless")  # the first is the default
FLOW_BACKENDS = ("opencv", "torch")
