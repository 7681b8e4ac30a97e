"""Photos and splits for bench/deep_fine_tune/train.py, made here with the package's own split.

    python bench/deep_fine_tune/prepare.py [--out .devdata] [--in-domain-seeds 42,0,1,2] [--cross-seeds 42,0,1,2,3,4]

train.py runs where TensorFlow is not (Keras 3 on JAX, on a lent GPU), so it cannot scan, fingerprint and
split the data folders itself. This writes, into one folder that travels with it:
- photos/NNNNN.jpg: every photo of trashnet4, mixed4 and cans-web, decoded as the package decodes it
  (RGB, 224x224 bilinear) and saved as JPEG (quality --quality: the folder must fit the device's 64 MiB);
- manifest.json: each photo's source, file, class and label, and for every split seed the photo numbers of
  each part: `in_domain` is bench/in_domain.py's split of the three folders, `cross` bench/cross_source.py's
  trashnet4 -> mixed4 fold (trashnet4 split alone; `heldout` is all of mixed4); `offline` is the default
  recipe's offline augmentation (`trashure.training.views.offline_settings`), which train.py applies.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cross_source import SHARED, in_source, source_tag  # noqa: E402
from PIL import Image  # noqa: E402

from trashure.config import TrainConfig  # noqa: E402
from trashure.data import ImageRecord, scan_sources  # noqa: E402
from trashure.images import load_array  # noqa: E402

FOLDERS = [SHARED / "trashnet4", SHARED / "mixed4", SHARED / "cans-web"]
HELD_OUT = "mixed4"


def part_numbers(split, number: dict[tuple[str, str], int]) -> dict[str, list[int]]:
    return {part: [number[(r.source, r.relpath)] for r in split.part(part)] for part in ("train", "val", "test")}


def write_photos(records: list[ImageRecord], folder: Path, quality: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, record in enumerate(records):
        Image.fromarray(load_array(record.path)).save(folder / f"{i:05d}.jpg", quality=quality)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / ".devdata"))
    parser.add_argument("--in-domain-seeds", default="42,0,1,2")
    parser.add_argument("--cross-seeds", default="42,0,1,2,3,4")
    parser.add_argument("--quality", type=int, default=88)
    args = parser.parse_args()
    missing = [str(f) for f in FOLDERS if not f.is_dir()]
    if missing:
        print(f"skipped: the data folders are not here ({', '.join(missing)})")
        return 2
    from trashure.training.prepared import prepare_data
    from trashure.training.views import offline_settings

    out = Path(args.out)
    everything = scan_sources(FOLDERS)
    records = everything.records
    number = {(r.source, r.relpath): i for i, r in enumerate(records)}
    manifest = {"classes": list(everything.classes), "quality": args.quality,
                "photos": [{"source": r.source, "file": r.relpath, "label": r.label, "tag": source_tag(r)}
                           for r in records],
                "offline": dataclasses.asdict(offline_settings(TrainConfig())), "in_domain": {}, "cross": {}}
    for seed in map(int, args.in_domain_seeds.split(",")):
        data = prepare_data(FOLDERS, TrainConfig(seed=seed), everything.classes)
        manifest["in_domain"][str(seed)] = part_numbers(data.split, number)
        print(f"in-domain seed {seed}: {data.sizes()}", flush=True)
    heldout = [number[(r.source, r.relpath)] for r in records if in_source(r, HELD_OUT)]
    for seed in map(int, args.cross_seeds.split(",")):
        data = prepare_data(FOLDERS[:2], TrainConfig(seed=seed), everything.classes,
                            keep=lambda r: not in_source(r, HELD_OUT))
        manifest["cross"][str(seed)] = {**part_numbers(data.split, number), "heldout": heldout}
        print(f"cross seed {seed}: {data.sizes()}, held out {len(heldout)}", flush=True)
    write_photos(records, out / "photos", args.quality)
    (out / "manifest.json").write_text(json.dumps(manifest))
    print(f"{len(records)} photos and their splits in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
