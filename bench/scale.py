"""How Trashure scales with the number of photos: throughput and peak memory, N side by side in one run.

    python bench/scale.py [--sizes 2000,10000,40000] [--source ../shared/data/trashnet4] [--work DIR]
                          [--stages inspect,features,train]

Builds a synthetic data folder of N photos from a real one: each is a real photo re-encoded with a small
random crop, turn and colour change (other bytes; its perceptual hash stays near its original's, so the
leakage-safe split sees groups of ~N/1,875 near-duplicates, as a folder of bursts would). The N-photo
folders share their first photos (the largest is built once, the smaller ones are hard links to its first N).

Each stage runs in its own process with an empty cache, so its peak resident memory (VmHWM) is its own:
- inspect: list, fingerprint (sha256 + perceptual hash) and split every photo;
- features: the frozen base's pooled features of every photo (the feature cache filled from empty);
- train: a fast run on the clean views, frozen stage only (--views 0 --fine-tune-blocks 0): list,
  fingerprint, split, extract, train the head, save the model and its TFLite twin.
Not in CI: at 40,000 photos the whole run takes about 25 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CLASSES = ("can", "glass_bottle", "other", "plastic_bottle")


def _variant(job: tuple[str, str, int]) -> None:
    import numpy as np
    from PIL import Image, ImageEnhance

    source, target, seed = job
    rng = np.random.default_rng(seed)
    with Image.open(source) as image:
        image = image.convert("RGB")
        w, h = image.size
        dx, dy = (rng.uniform(0, 0.06, 2) * (w, h)).astype(int)
        image = image.crop((dx, dy, w - int(rng.uniform(0, 0.06) * w), h - int(rng.uniform(0, 0.06) * h)))
        image = image.rotate(float(rng.uniform(-4, 4)), resample=Image.Resampling.BILINEAR, fillcolor=(255, 255, 255))
        image = ImageEnhance.Brightness(image).enhance(float(rng.uniform(0.9, 1.1)))
        image.resize((w, h), Image.Resampling.BILINEAR).save(target, quality=int(rng.integers(85, 96)))


def build_folder(source: Path, root: Path, n: int) -> Path:
    """root/<class>/<i>.jpg for i < n, made from source's photos in turn (kept between runs)."""
    originals = sorted(p for c in CLASSES for p in (source / c).glob("*.jpg"))
    jobs = []
    for i in range(n):
        photo = originals[i % len(originals)]
        target = root / photo.parent.name / f"{i:06d}_{photo.stem}.jpg"
        if not target.exists():
            jobs.append((str(photo), str(target), i))
    for c in CLASSES:
        (root / c).mkdir(parents=True, exist_ok=True)
    if jobs:
        t0 = time.time()
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            list(pool.map(_variant, jobs, chunksize=64))
        print(f"built {len(jobs)} photos in {time.time() - t0:.0f} s", flush=True)
    return root


def subset(full: Path, root: Path, n: int) -> Path:
    """A folder of hard links to the first n photos of full (by name), per class (a symbolic link that leads
    out of its class folder is skipped by the scan, by design)."""
    if root.exists():
        return root
    names = sorted((p for c in CLASSES for p in (full / c).glob("*.jpg")), key=lambda p: p.name)[:n]
    for p in names:
        (root / p.parent.name).mkdir(parents=True, exist_ok=True)
        os.link(p, root / p.parent.name / p.name)
    return root


STAGE = r"""
import json, sys, time
from pathlib import Path
stage, folder, runs = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
if stage == "inspect":
    from trashure.health import inspect_dataset
    report = inspect_dataset(folder)
    n, extra = report["n_images"], {"near_duplicate_groups": report["near_duplicates"]["n_groups"]}
elif stage == "features":
    from trashure.data import scan_sources
    from trashure.features import pooled_features
    paths = [r.path for r in scan_sources(folder).records]
    features, _ = pooled_features(paths)
    n, extra = len(paths), {}
else:
    from trashure.config import TrainConfig
    from trashure.training import train
    run = train(folder, TrainConfig(augmented_views=0, fine_tune_blocks=0), runs_dir=runs, echo=None)
    m = run.metrics()
    n, extra = sum(m["split_sizes"].values()), {"accuracy": m["accuracy"], "timings": m["timings"]}
seconds = time.perf_counter() - t0
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print("RESULT " + json.dumps({"n": n, "seconds": seconds, "peak_mb": peak / 1024, **extra}))
"""


def run_stage(stage: str, folder: Path, work: Path) -> dict:
    cache = Path(tempfile.mkdtemp(dir=work, prefix=f"cache-{stage}-"))
    env = {**os.environ, "TRASHURE_CACHE": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        out = subprocess.run([sys.executable, "-c", STAGE, stage, str(folder), str(cache / "runs")], cwd=REPO,
                             env=env, capture_output=True, text=True, check=False)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{stage} on {folder} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="2000,10000,40000")
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data" / "trashnet4")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "trashure-scale")
    parser.add_argument("--stages", default="inspect,features,train")
    args = parser.parse_args()
    if not all((args.source / c).is_dir() for c in CLASSES):
        print(f"skipped: no class folders in {args.source} (the real photos beside the repo)")
        return 0
    sizes = sorted(int(s) for s in args.sizes.split(","))
    full = build_folder(args.source, args.work / f"photos-{sizes[-1]}", sizes[-1])
    rows = []
    for n in sizes:
        folder = full if n == sizes[-1] else subset(full, args.work / f"photos-{n}", n)
        for stage in args.stages.split(","):
            result = run_stage(stage, folder, args.work)
            rows.append({"stage": stage, **result})
            print(f"{stage:9s} N={result['n']:>6}  {result['seconds']:8.1f} s  "
                  f"{result['n'] / result['seconds']:7.1f} photos/s  peak {result['peak_mb']:7.0f} MB", flush=True)
    print("\n| stage | " + " | ".join(f"N = {n:,}" for n in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for stage in args.stages.split(","):
        cells = [r for r in rows if r["stage"] == stage]
        print(f"| {stage}: photos/s | " + " | ".join(f"{r['n'] / r['seconds']:.0f}" for r in cells) + " |")
        print(f"| {stage}: peak memory (MB) | " + " | ".join(f"{r['peak_mb']:.0f}" for r in cells) + " |")
    for stage in args.stages.split(","):
        cells = [r for r in rows if r["stage"] == stage]
        print(f"{stage}: peak memory x{cells[-1]['peak_mb'] / cells[0]['peak_mb']:.2f} and throughput "
              f"x{(cells[-1]['n'] / cells[-1]['seconds']) / (cells[0]['n'] / cells[0]['seconds']):.2f} "
              f"from N = {sizes[0]:,} to {sizes[-1]:,}")
    out = REPO / "bench" / "results" / "scale.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
