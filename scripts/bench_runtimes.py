"""Times an exported detlab ONNX model in ONNX Runtime or OpenVINO (CPU).

Called by `detlab bench detector` for its runtime race rows; prints one JSON object:
{"runtime", "precision", "threads", "batch", "ms_per_image", "iterations"}, or
{"skipped": reason} when the runtime is not installed (OpenVINO is a benchmark-only
package: `bash scripts/setup.sh --bench`).

    python scripts/bench_runtimes.py --onnx M.onnx --runtime openvino --precision bf16 \
        --threads 1 --batch 1 --iterations 9
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np


def input_array(shape, dtype):
    rng = np.random.default_rng(0)
    return (rng.random(shape) * 255.0).astype(dtype)


def onnxruntime_runner(path, precision, threads):
    import onnxruntime as ort

    if precision != "fp32":
        raise SystemExit("ONNX Runtime runs this model in fp32 only")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    x = input_array(spec.shape, np.float32 if "float" in spec.type else np.uint8)
    return lambda: session.run(None, {spec.name: x}), spec.shape[0], ort.__version__


def openvino_runner(path, precision, threads):
    import openvino as ov

    core = ov.Core()
    model = core.read_model(path)
    config = {
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
    }
    compiled = core.compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    spec = compiled.inputs[0]
    shape = list(spec.get_shape())
    x = input_array(shape, np.float32 if spec.get_element_type() == ov.Type.f32 else np.uint8)
    return lambda: request.infer({0: x}), shape[0], ov.__version__


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--onnx", required=True)
    p.add_argument("--runtime", choices=["onnxruntime", "openvino"], required=True)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=1, help="checked against the model's batch")
    p.add_argument("--iterations", type=int, default=9)
    a = p.parse_args()
    make = onnxruntime_runner if a.runtime == "onnxruntime" else openvino_runner
    try:
        run, batch, version = make(a.onnx, a.precision, a.threads)
    except ImportError as e:
        print(json.dumps({"skipped": f"{a.runtime} is not installed ({e}); "
                          "run `bash scripts/setup.sh --bench`"}))
        return
    if batch != a.batch:
        sys.exit(f"{a.onnx} has batch {batch}, not {a.batch}")
    for _ in range(3):
        run()
    times = []
    for _ in range(max(a.iterations, 1)):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    print(json.dumps({
        "runtime": a.runtime,
        "version": version,
        "precision": a.precision,
        "threads": a.threads,
        "batch": batch,
        "iterations": len(times),
        "ms_per_image": statistics.median(times) * 1e3 / batch,
    }))


if __name__ == "__main__":
    main()
