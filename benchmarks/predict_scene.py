"""Whole-scene prediction: megapixels per second and peak memory, per overlap, blend, TTA and runtime.

Every case runs in its own child process, which reports its wall time and peak resident memory (maxrss), so
one case's memory never hides another's. The baseline is the previous behaviour: the whole scene's class
scores held in memory, half-overlapping windows. Models are the reference U-Net (16 filters, depth 5) with
256-px windows, initialised with seed 0 (speed and memory do not depend on the weights), and, for the
20,000 x 20,000 scene, a tiny U-Net with the same 256-px windows and 6 classes (the running blend, the strip
and the writers are the same; only the network's own cost is smaller, so the run fits in minutes).

Usage: nice -n 10 python benchmarks/predict_scene.py [--size 1536] [--big 20000] [--parts throughput,big]
       [--work /tmp/aerotune-scene]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def write_checkpoint(path: Path, *, base_filters: int, depth: int, patch: int) -> Path:
    import torch

    from aerotune.config import RunConfig
    from aerotune.data.palette import Palette
    from aerotune.model.unet import build_model

    torch.manual_seed(0)
    config = RunConfig().with_overrides(
        {"model.base_filters": base_filters, "model.depth": depth, "data.patch_size": patch}
    )
    palette = Palette.dubai()
    model = build_model(config.model, num_classes=palette.num_classes)
    torch.save(
        {"model": model.state_dict(), "config": config.to_dict(), "palette": palette.to_dict(), "norm_stats": None},
        path,
    )
    return path


def texture(h: int, w: int, seed: int, y0: int = 0) -> np.ndarray:
    """Smooth, aerial-looking uint8 RGB rows (sums of sines), cheap to make at any size, rows y0 .. y0+h."""
    rng = np.random.default_rng(seed)
    y = np.arange(y0, y0 + h, dtype=np.float32)[:, None]
    x = np.arange(w, dtype=np.float32)[None, :]
    out = np.empty((h, w, 3), np.uint8)
    for c in range(3):
        f = rng.uniform(0.002, 0.05, size=(4, 2))
        v = sum(np.sin(fy * y + 1.3 * k) * np.cos(fx * x + 0.7 * k) for k, (fy, fx) in enumerate(f))
        out[..., c] = np.clip(128 + 30 * v, 0, 255).astype(np.uint8)
    return out


def write_geotiff(path: Path, height: int, width: int) -> Path:
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32640",
        "transform": from_origin(500000, 2800000, 0.5, 0.5),
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "BIGTIFF": "YES",
    }
    tmp = path.with_name(f".{path.name}.tmp")  # a file of the final name is always complete
    with rasterio.open(tmp, "w", **profile) as dst:
        for r in range(0, height, 1024):
            rows = texture(min(1024, height - r), width, seed=1, y0=r)
            dst.write(rows.transpose(2, 0, 1), window=Window(0, r, width, rows.shape[0]))
    return tmp.replace(path)


def run_case(case: dict) -> dict:
    """In the child: segment one scene as ``case`` says; report seconds and peak memory."""
    from aerotune.predict.load import load_model
    from aerotune.predict.run import predict_files
    from aerotune.predict.scene import Predictor

    model = load_model(case["model"])
    t0 = time.perf_counter()
    if case.get("in_memory"):
        assert isinstance(model, Predictor)
        from aerotune.data.sources import read_image

        image = np.asarray(read_image(Path(case["image"])))
        model.scores(image, overlap=case["overlap"], blend=case["blend"]).argmax(axis=0)
    else:
        predict_files(
            model,
            [case["image"]],
            case["out"],
            overlap=case["overlap"],
            blend=case["blend"],
            tta=case.get("tta", "none"),
        )
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "maxrss_mb": peak_memory_mb()}


def peak_memory_mb() -> float:
    """This process's peak resident memory. VmHWM, not getrusage's maxrss, which Linux carries over from the
    parent through fork and exec (the parent holds torch and the ONNX exporter)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def spawn(case: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--case", json.dumps(case)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"case {case['name']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1536, help="side of the throughput scene (PNG)")
    parser.add_argument("--big", type=int, default=20000, help="side of the big GeoTIFF scene (0: skip)")
    parser.add_argument("--work", default="/tmp/aerotune-scene")
    parser.add_argument("--parts", default="throughput,big", help="throughput, big or both (default)")
    parser.add_argument("--no-tta", action="store_true", help="skip the TTA case")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return
    import torch

    from aerotune.predict.io import has_rasterio
    from aerotune.runtime import cpu_has_native_bf16

    parts = set(args.parts.split(","))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ref = write_checkpoint(work / "reference-256.pt", base_filters=16, depth=5, patch=256)
    tiny = write_checkpoint(work / "tiny-256.pt", base_filters=2, depth=2, patch=256)
    scene = work / f"scene-{args.size}.png"
    if not scene.exists():
        from PIL import Image

        Image.fromarray(texture(args.size, args.size, seed=0)).save(scene)
    mp = args.size * args.size / 1e6
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: {cpu_has_native_bf16()}; "
        f"throughput scene {args.size}x{args.size} ({mp:.2f} MP), reference U-Net, 256-px windows"
    )
    cases = [
        {"name": "baseline: whole scene in memory, overlap 0.5", "in_memory": True, "overlap": 0.5, "blend": "smooth"},
        {"name": "streamed, overlap 0.5, smooth", "overlap": 0.5, "blend": "smooth"},
        {"name": "streamed, overlap 0.25, smooth (default)", "overlap": 0.25, "blend": "smooth"},
        {"name": "streamed, overlap 0.25, uniform", "overlap": 0.25, "blend": "uniform"},
        {"name": "streamed, overlap 0.125, smooth", "overlap": 0.125, "blend": "smooth"},
        {"name": "streamed, overlap 0.25, smooth, TTA flips", "overlap": 0.25, "blend": "smooth", "tta": "flips"},
    ]
    try:
        if "throughput" not in parts:
            raise RuntimeError("throughput part not run")
        from aerotune.predict.onnx import export_onnx

        onnx_path = export_onnx(ref, work / "reference-256.onnx")
        cases.append(
            {"name": "ONNX Runtime, overlap 0.25, smooth", "overlap": 0.25, "blend": "smooth", "model": str(onnx_path)}
        )
    except Exception as exc:  # noqa: BLE001 - the benchmark runs without the extra, and says so
        print(f"(no ONNX case: {exc})")
    results = []
    for i, case in enumerate(cases if "throughput" in parts else []):
        if args.no_tta and case.get("tta"):
            continue
        case = {"model": str(ref), "image": str(scene), "out": str(work / f"out-{i}"), **case}
        r = spawn(case)
        results.append((case["name"], mp / r["seconds"], r["maxrss_mb"]))
        print(f"  {case['name']:<48} {mp / r['seconds']:6.3f} MP/s  peak {r['maxrss_mb']:7.0f} MB", flush=True)
    base = results[0][1] if results and results[0][0].startswith("baseline") else None
    if base:
        for name, speed, _ in results[1:]:
            print(f"  {name:<48} {speed / base:5.2f}x the baseline's speed")
    if "big" not in parts:
        return
    if args.big and has_rasterio():
        big = work / f"scene-{args.big}.tif"
        if not big.exists():
            t0 = time.perf_counter()
            write_geotiff(big, args.big, args.big)
            print(f"wrote {big} in {time.perf_counter() - t0:.0f} s")
        strip = work / f"strip-{args.big}x448.tif"
        if not strip.exists():
            write_geotiff(strip, 448, args.big)
        for name, image, model, rows in [
            (f"GeoTIFF {args.big}x448 (2 strips), reference U-Net", strip, ref, 448),
            (f"GeoTIFF {args.big}x{args.big}, tiny U-Net", big, tiny, args.big),
        ]:
            r = spawn(
                {
                    "name": name,
                    "model": str(model),
                    "image": str(image),
                    "out": str(work / "out-big"),
                    "overlap": 0.25,
                    "blend": "smooth",
                }
            )
            px = rows * args.big / 1e6
            print(
                f"  {name:<48} {px / r['seconds']:6.3f} MP/s  peak {r['maxrss_mb']:7.0f} MB  "
                f"({px:.0f} MP in {r['seconds']:.0f} s)",
                flush=True,
            )
        held = 6 * args.big * args.big * 4 / 1e9
        print(f"  (holding the {args.big}x{args.big} scene's 6 class scores as float32 would take {held:.1f} GB)")
    elif args.big:
        print("(no big GeoTIFF case: needs rasterio, pip install 'aerotune[geo]')")


if __name__ == "__main__":
    main()
