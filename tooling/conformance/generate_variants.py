#!/usr/bin/env python3
"""Step-count variants of the diffusers scheduler vectors, from a numpy port of diffusers' schedulers.

Writes ``vectors/variant-vectors.json`` in the format of ``peer-vectors.json`` (its ``schedulers`` section):
set_timesteps tables and full trajectories with stored model outputs and noise, at step counts that do and do
not divide 1000, for DDIM (every spacing, eta 0 and eta > 0, epsilon and v_prediction), Euler (every spacing
and Karras), Euler ancestral (every spacing), DPM-Solver++(2M) (Karras and linspace) and flow-matching Euler
(shift 1 and 3). See README.md next to this file.

The port (diffusers_port.py) follows huggingface/diffusers@58eb52c0803ea9af3abec60841c2a093bdf1f951, the
commit of peer-vectors.json. ``--check-shared`` runs it on every diffusers scheduler case of peer-vectors.json
and fails unless all are within that file's tolerances.

Usage: /usr/bin/python3 tooling/conformance/generate_variants.py [--check-shared PATH] [--out PATH]
"""
import argparse
import json
import platform
import sys
import zlib
from pathlib import Path

import numpy as np

from diffusers_port import F, alphas_cumprod, ddim_config, ddim_run, ddim_step, dpm_run, dpm_set_timesteps, euler_run, euler_set_timesteps, flow_run, spaced, train_sigmas

COMMIT = "58eb52c0803ea9af3abec60841c2a093bdf1f951"
SEED = 10  # issue 10; every case draws from default_rng([SEED, crc32(case id)])
COUNTS = (7, 12, 13, 33, 50)  # trajectories
TABLE_COUNTS = (7, 12, 13, 16, 26, 27, 31, 32, 33, 50)  # set_timesteps tables (16/26/27/31/32: rounding ties)
SHAPE = (1, 2, 4, 4)  # half the shared file's [1, 4, 4, 4]: 177 cases stay near 4 MB
SD15 = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------- file format (peer-vectors.json, README §2)
def tensor(a):
    a = np.asarray(a, dtype=F)
    return {"shape": list(a.shape), "data": [float("%.9g" % v) for v in a.ravel()]}


def encode(value):
    if isinstance(value, np.ndarray):
        return tensor(value)
    if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
        return [tensor(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float("%.9g" % value)
    return value


def decode(value):
    return np.array(value["data"], dtype=F).reshape(value["shape"])


def draws(case_id, n, noise):
    """Seeded inputs of one case: x_init (standard normal), n model outputs and, when asked, n noise tensors."""
    rng = np.random.default_rng([SEED, zlib.crc32(case_id.encode())])
    x = rng.standard_normal(SHAPE).astype(F)
    outputs = [rng.standard_normal(SHAPE).astype(F) for _ in range(n)]
    noises = [rng.standard_normal(SHAPE).astype(F) for _ in range(n)] if noise else None
    return x, outputs, noises


def ddim_cfg(spacing, offset, prediction, alpha_one=False):
    return {**SD15, "clip_sample": False, "set_alpha_to_one": alpha_one, "timestep_spacing": spacing, "steps_offset": offset, "prediction_type": prediction}


SPACINGS = {"leading_offset0": ("leading", 0), "leading_offset1": ("leading", 1), "trailing": ("trailing", 0), "linspace": ("linspace", 0)}


def build():
    s = {"ddim_set_timesteps": {}, "euler_set_timesteps": {}}
    for name, (spacing, offset) in SPACINGS.items():
        for n in TABLE_COUNTS:
            cfg = ddim_cfg(spacing, offset, "epsilon")
            del cfg["prediction_type"]
            acp, final = ddim_config(cfg)
            ts = spaced(cfg, n, "leading", np.int64)
            s["ddim_set_timesteps"][f"{name}/n{n}"] = {"config": cfg, "num_inference_steps": n, "timesteps": [int(t) for t in ts], "alpha_prod_t": tensor(acp[ts]), "final_alpha_cumprod": encode(final)}
            ecfg = {**SD15, "timestep_spacing": spacing, **({"steps_offset": offset} if spacing == "leading" else {})}
            ets, esig, init = euler_set_timesteps(ecfg, n)
            s["euler_set_timesteps"][f"{name}/n{n}"] = {"config": ecfg, "num_inference_steps": n, "timesteps": tensor(ets), "sigmas": tensor(esig), "init_noise_sigma": encode(init)}
    for n in TABLE_COUNTS:
        kcfg = {**SD15, "use_karras_sigmas": True, "timestep_spacing": "linspace"}
        kts, ksig, kinit = euler_set_timesteps(kcfg, n)
        s["euler_set_timesteps"][f"karras/n{n}"] = {"config": kcfg, "num_inference_steps": n, "timesteps": tensor(kts), "sigmas": tensor(ksig), "init_noise_sigma": encode(kinit)}
        dcfg = {**SD15, "algorithm_type": "dpmsolver++", "solver_order": 2}
        dts, dsig = dpm_set_timesteps(dcfg, n)
        s[f"dpmpp_2m_linspace_set_timesteps/n{n}"] = {"config": dcfg, "num_inference_steps": n, "timesteps": [int(t) for t in dts], "sigmas": tensor(dsig)}

    def add(key, cfg, n, run, noise=False, scale_init=None, extra=None):
        x, outputs, noises = draws(key, n, noise)
        if scale_init is not None:
            x = (x * scale_init).astype(F)  # Euler samplers start at randn * init_noise_sigma
        result = run(x, outputs, noises)
        case = {"config": cfg, **(extra or {}), "num_inference_steps": n, "x_init": x, "model_output_per_step": outputs, **result}
        if noise:
            case["noise_per_step"] = noises
        s[key] = {k: encode(v) for k, v in case.items()}

    for n in COUNTS:
        for name, (spacing, offset) in SPACINGS.items():
            variants = [("epsilon", 0.0, False), ("epsilon", 0.6, False), ("v_prediction", 0.0, False), ("v_prediction", 1.0, False)]
            if spacing in ("trailing", "linspace"):
                variants.append(("epsilon", 0.0, True))
            for prediction, eta, alpha_one in variants:
                cfg = ddim_cfg(spacing, offset, prediction, alpha_one)
                key = f"ddim_trajectory/{name}/n{n}/{prediction}/eta{eta:g}" + ("/set_alpha_to_one" if alpha_one else "")
                add(key, cfg, n, lambda x, o, z, cfg=cfg, eta=eta: ddim_run(cfg, n, eta, x, o, z), noise=eta > 0, extra={"eta": eta})
            ecfg = {**SD15, "timestep_spacing": spacing, **({"steps_offset": offset} if spacing == "leading" else {})}
            for prediction in ("epsilon", "v_prediction") if spacing == "trailing" else ("epsilon",):
                pcfg = {**ecfg, "prediction_type": prediction}
                init = euler_set_timesteps(pcfg, n)[2]
                add(f"euler_trajectory/{name}/n{n}/{prediction}", pcfg, n, lambda x, o, z, c=pcfg: euler_run(c, n, x, o), scale_init=init)
            pcfg = {**ecfg, "prediction_type": "epsilon"}
            init = euler_set_timesteps(pcfg, n)[2]
            add(f"euler_ancestral_trajectory/{name}/n{n}", pcfg, n, lambda x, o, z, c=pcfg: euler_run(c, n, x, o, z), noise=True, scale_init=init)
        kcfg = {**SD15, "use_karras_sigmas": True, "timestep_spacing": "linspace", "prediction_type": "epsilon"}
        add(f"euler_karras_trajectory/n{n}", kcfg, n, lambda x, o, z, c=kcfg: euler_run(c, n, x, o), scale_init=euler_set_timesteps(kcfg, n)[2])
        for label, karras_sigmas, prediction in (("karras", True, "epsilon"), ("karras", True, "v_prediction"), ("linspace", False, "epsilon")):
            dcfg = {**SD15, "algorithm_type": "dpmsolver++", "solver_order": 2, "solver_type": "midpoint", "use_karras_sigmas": karras_sigmas, "lower_order_final": True, "final_sigmas_type": "zero", "prediction_type": prediction, "timestep_spacing": "linspace"}
            add(f"dpmpp_2m_trajectory/{label}/n{n}/{prediction}", dcfg, n, lambda x, o, z, c=dcfg: dpm_run(c, n, x, o))
        for shift in (1.0, 3.0):
            fcfg = {"num_train_timesteps": 1000, "shift": shift}
            add(f"flow_match_euler_trajectory/shift{shift:g}/n{n}", fcfg, n, lambda x, o, z, c=fcfg: flow_run(c, n, x, o))
    return s


# ---------------------------------------------------------------- --check-shared: the port against peer-vectors.json
def check_shared(path):
    shared = json.loads(Path(path).read_text())["schedulers"]
    worst = {}

    def cmp(case, got, want, tol):
        got, want = np.asarray(got, dtype=np.float64).ravel(), np.asarray(want, dtype=F).astype(np.float64).ravel()
        r = np.inf if got.shape != want.shape else float(np.max(np.abs(got - want) / (tol + tol * np.abs(want)), initial=0))
        worst[case] = max(worst.get(case, 0.0), r)

    def exact(case, got, want):
        worst[case] = max(worst.get(case, 0.0), 0.0 if [int(v) for v in got] == list(want) else np.inf)

    def traj(case, c, result):
        for i, want in enumerate(c["x_after_step"]):
            cmp(case, result["x_after_step"][i], decode(want), 1e-4)

    acp, betas = alphas_cumprod(SD15)
    cmp("sd15_betas", betas, shared["sd15_betas"]["data"], 1e-5)
    cmp("sd15_alphas_cumprod", acp, shared["sd15_alphas_cumprod"]["data"], 1e-5)
    full = train_sigmas(acp)
    cmp("diffusers_sd15_sigma_min", [full[0]], [shared["diffusers_sd15_sigma_min"]], 1e-5)
    cmp("diffusers_sd15_sigma_max", [full[-1]], [shared["diffusers_sd15_sigma_max"]], 1e-5)
    for key, c in shared["ddim_set_timesteps"].items():
        a, final = ddim_config(c["config"])
        ts = spaced(c["config"], c["num_inference_steps"], "leading", np.int64)
        exact(f"ddim_set_timesteps/{key}", ts, c["timesteps"])
        cmp(f"ddim_set_timesteps/{key}", a[ts], c["alpha_prod_t"]["data"], 1e-5)
        cmp(f"ddim_set_timesteps/{key}", [final], [c["final_alpha_cumprod"]], 1e-5)
    for c in shared["ddim_step"]:
        a, final = ddim_config(c["config"])
        inputs = c["inputs"]
        noise = decode(inputs["variance_noise"]) if "variance_noise" in inputs else None
        prev, x0 = ddim_step(c["config"], a, final, c["num_inference_steps"], c["timestep"], decode(inputs["sample"]), decode(inputs["model_output"]), c["eta"], noise)
        cmp(f"ddim_step/{c['id']}", prev, c["outputs"]["prev_sample"]["data"], 1e-5)
        cmp(f"ddim_step/{c['id']}", x0, c["outputs"]["pred_original_sample"]["data"], 1e-5)
    c = shared["ddim_trajectory"]
    outs = [decode(t) for t in c["model_output_per_step"]]
    r = ddim_run(c["config"], len(outs), c["eta"], decode(c["x_init"]), outs, None)
    exact("ddim_trajectory", r["timesteps"], c["timesteps"])
    traj("ddim_trajectory", c, r)
    for key, c in shared["euler_set_timesteps"].items():
        ts, sig, init = euler_set_timesteps(c["config"], c["num_inference_steps"])
        for what, got in (("timesteps", ts), ("sigmas", sig), ("init_noise_sigma", [init])):
            want = c[what]["data"] if isinstance(c[what], dict) else [c[what]]
            cmp(f"euler_set_timesteps/{key}", got, want, 1e-5)
    for key, noisy in (("euler_karras_trajectory", False), ("euler_ancestral_trajectory", True)):
        c = shared[key]
        outs = [decode(t) for t in c["model_output_per_step"]]
        r = euler_run(c["config"], len(outs), decode(c["x_init"]), outs, [decode(t) for t in c["noise_per_step"]] if noisy else None)
        cmp(key, r["sigmas"], c["sigmas"]["data"], 1e-5)
        cmp(key, r["timesteps"], c["timesteps"]["data"], 1e-5)
        for i, want in enumerate(c["scaled_model_input_per_step"]):
            cmp(key, r["scaled_model_input_per_step"][i], decode(want), 1e-4)
        traj(key, c, r)
    c = shared["dpmpp_2m_karras_trajectory"]
    outs = [decode(t) for t in c["model_output_per_step"]]
    r = dpm_run(c["config"], len(outs), decode(c["x_init"]), outs)
    exact("dpmpp_2m_karras_trajectory", r["timesteps"], c["timesteps"])
    cmp("dpmpp_2m_karras_trajectory", r["sigmas"], c["sigmas"]["data"], 1e-5)
    traj("dpmpp_2m_karras_trajectory", c, r)
    c = shared["dpmpp_2m_linspace_set_timesteps"]
    ts, sig = dpm_set_timesteps(c["config"], len(c["timesteps"]))
    exact("dpmpp_2m_linspace_set_timesteps", ts, c["timesteps"])
    cmp("dpmpp_2m_linspace_set_timesteps", sig, c["sigmas"]["data"], 1e-5)
    for key in ("flow_match_euler_trajectory", "flow_match_euler_shift1_set_timesteps"):
        c = shared[key]
        outs = [decode(t) for t in c["model_output_per_step"]] if "model_output_per_step" in c else None
        r = flow_run(c["config"], c["sigmas"]["shape"][0] - 1, decode(c["x_init"]) if outs else None, outs)
        cmp(key, r["sigmas"], c["sigmas"]["data"], 1e-5)
        cmp(key, r["timesteps"], c["timesteps"]["data"], 1e-5)
        if "init_sigma_min" in c:
            cmp(key, [r["init_sigma_min"], r["init_sigma_max"]], [c["init_sigma_min"], c["init_sigma_max"]], 1e-5)
        if outs:
            traj(key, c, r)
    for case, ratio in worst.items():
        print(f"{'PASS' if ratio <= 1 else 'FAIL'} {case} worst ratio {ratio:.3g}")
    failed = [case for case, ratio in worst.items() if ratio > 1]
    print(f"{len(worst) - len(failed)} of {len(worst)} diffusers scheduler cases of {path} reproduced")
    return not failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check-shared", metavar="PATH", help="only check the port against peer-vectors.json (exit 1 on any miss)")
    parser.add_argument("--out", default=str(HERE / "vectors" / "variant-vectors.json"))
    args = parser.parse_args()
    if args.check_shared:
        sys.exit(0 if check_shared(args.check_shared) else 1)
    doc = {
        "format": {
            "tensor": "{shape: int[], data: float[]} row-major (C order), float32 values written with 9 significant digits",
            "tolerance_hint": "as peer-vectors.json: tables abs 1e-5 + rel 1e-5; trajectories abs 1e-4 + rel 1e-4; integer timesteps exact",
            "readme": "tooling/conformance/README.md: keys '<kind>/<variant>' hold one case of the shared file's '<kind>'",
        },
        "provenance": {
            "generator": "tooling/conformance/generate_variants.py (numpy port of diffusers' schedulers, own code)",
            "seed": SEED,
            "inputs": "x_init, model outputs and noise: numpy default_rng([seed, crc32(case key)]).standard_normal, float32",
            "numpy": np.__version__,
            "python": platform.python_version(),
            "diffusers": {"repo": "huggingface/diffusers", "commit": COMMIT, "files": [f"src/diffusers/schedulers/scheduling_{n}.py" for n in ("ddim", "euler_discrete", "euler_ancestral_discrete", "dpmsolver_multistep", "flow_match_euler_discrete")]},
        },
        "schedulers": build(),
    }
    Path(args.out).write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {args.out}: {len(doc['schedulers'])} scheduler keys")


if __name__ == "__main__":
    main()
