"""Inference speed of the packaged depth network (torch, and ONNX Runtime when installed).

Prints milliseconds per frame and frames per second for the network alone (a 1 x 3 x H x W
input already normalised) at each requested size, with a fixed number of CPU threads.

Run: ``PYTHONPATH=. python benchmarks/model_speed.py [--model PATH] [--threads 2]
[--sizes 320x240 256x192]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def _time(fn, repeat: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main() -> None:
    import numpy as np
    import torch

    from recon3d_ros.models import DEFAULT_WEIGHTS, load_checkpoint

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(DEFAULT_WEIGHTS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", nargs="+", default=["320x240", "256x192"])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--no-onnx", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, config, meta = load_checkpoint(args.model)
    params = sum(p.numel() for p in model.parameters())
    print(
        f"model {args.model}: {params / 1e6:.2f} M parameters, "
        f"{Path(args.model).stat().st_size / 1e6:.1f} MB, "
        f"torch {torch.__version__}, {args.threads} threads"
    )
    for size in args.sizes:
        w, h = (int(v) for v in size.split("x"))
        x = torch.from_numpy(
            np.random.default_rng(0).standard_normal((1, 3, h, w)).astype(np.float32)
        )
        with torch.inference_mode():
            ms = _time(lambda: model(x), args.repeat)
        med = statistics.median(ms)
        print(
            f"torch        {w}x{h}: median {med:6.1f} ms  ({1000 / med:5.1f} fps)  "
            f"p90 {np.percentile(ms, 90):6.1f} ms"
        )
        if args.no_onnx:
            continue
        try:
            import onnxruntime as ort
        except ImportError:
            print("onnxruntime not installed: skipping the ONNX timing")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m.onnx"
            torch.onnx.export(
                model,
                (x,),
                str(path),
                input_names=["image"],
                output_names=["depth"],
                opset_version=17,
                dynamo=False,
            )
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = args.threads
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            feed = {"image": x.numpy()}
            ms = _time(lambda: sess.run(None, feed), args.repeat)
            med = statistics.median(ms)
            ref = model(x).detach().numpy()
            err = float(np.abs(sess.run(None, feed)[0] - ref).max() / np.abs(ref).max())
            print(
                f"onnxruntime  {w}x{h}: median {med:6.1f} ms  ({1000 / med:5.1f} fps)  "
                f"p90 {np.percentile(ms, 90):6.1f} ms"
                f"  (max rel. diff to torch {err:.1e})"
            )


if __name__ == "__main__":
    main()
