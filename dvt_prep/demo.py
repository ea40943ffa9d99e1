"""The demo until training lands: a small synthetic video, prepped, then `dvt inspect`."""

from __future__ import annotations

import os
import sys

from click.testing import CliRunner


def main(out_dir: str = "demo_out") -> int:
    from cli.main import main as dvt
    from dvt_prep.synthetic import write_translating_video

    os.makedirs(out_dir, exist_ok=True)
    videos = os.path.join(out_dir, "videos")
    os.makedirs(videos, exist_ok=True)
    for name, (dx, dy) in {"right": (2.0, 0.0), "down_left": (-1.5, 1.0), "still": (0, 0)}.items():
        write_translating_video(os.path.join(videos, f"{name}.mp4"), height=240, width=320,
                                num_frames=32, dx=dx, dy=dy, seed=len(name))
    store = os.path.join(out_dir, "demo.zarr")
    runner = CliRunner()
    for args in (["prep", videos, "-o", store, "--cues", "rgb,mv,md,rgbr,rgbd"],
                 ["inspect", store]):
        print("$ dvt " + " ".join(args))
        result = runner.invoke(dvt, args)
        print(result.output, end="")
        if result.exit_code != 0:
            return result.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
