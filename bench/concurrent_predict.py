"""Photos per second when several visitors classify at once through one shared Classifier (as the
dashboard's cached model is shared), for a few interpreter-pool sizes, side by side in one run.

    python bench/concurrent_predict.py [--photos 96] [--clients 1,4,8] [--pools 1,2,4]

Pool size 1 is the same as one interpreter behind a lock. Each call is the app's path: JPEG bytes ->
decode, resize, LiteRT float32. Also checks every concurrent answer equals the sequential one.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trashure.config import DEFAULT_MODEL_PATH, default_data_dir  # noqa: E402


def photo_bytes(n: int) -> list[bytes]:
    data_dir = default_data_dir()
    files = sorted(data_dir.glob("*/*.jpg"))[:: max(1, 1875 // n)][:n] if data_dir else []
    if len(files) >= n:
        return [f.read_bytes() for f in files]
    rng = np.random.default_rng(0)  # no data folder: synthetic photos of the same size
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (384, 512, 3), dtype=np.uint8)).save(buf, "JPEG")
        out.append(buf.getvalue())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=96)
    parser.add_argument("--clients", default="1,4,8")
    parser.add_argument("--pools", default="1,2,4")
    args = parser.parse_args()

    from trashure.litert import LiteRTModel
    from trashure.prediction import Classifier

    photos = photo_bytes(args.photos)
    classifier = Classifier(DEFAULT_MODEL_PATH)
    twin = classifier.lite
    expected = [classifier.predict(p).probabilities for p in photos]
    clients = [int(c) for c in args.clients.split(",")]
    print(f"{len(photos)} photos, {os.cpu_count()} CPU cores, LiteRT float32 ({twin._threads} threads each)\n")
    print("| interpreters in the pool | " + " | ".join(f"{c} client{'s' * (c > 1)}" for c in clients) + " |")
    print("|---:|" + "---:|" * len(clients))
    for pool in [int(p) for p in args.pools.split(",")]:
        classifier.lite = LiteRTModel(twin._kwargs["model_content"] if "model_content" in twin._kwargs
                                      else twin._kwargs["model_path"], pool_size=pool)
        cells = []
        for c in clients:
            with ThreadPoolExecutor(max_workers=c) as executor:
                list(executor.map(classifier.predict, photos[:c * 2]))  # warm every interpreter
                start = time.perf_counter()
                got = list(executor.map(classifier.predict, photos))
                rate = len(photos) / (time.perf_counter() - start)
            wrong = sum(any(abs(g.probabilities[k] - e[k]) > 1e-5 for k in e) for g, e in zip(got, expected))
            cells.append(f"{rate:.1f} photos/s" + (f" ({wrong} WRONG)" if wrong else ""))
        print(f"| {pool} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
