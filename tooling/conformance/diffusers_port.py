"""A numpy port of diffusers' DDIM, Euler, Euler ancestral, DPM-Solver++(2M) and flow-matching Euler schedulers.

Written from huggingface/diffusers@58eb52c0803ea9af3abec60841c2a093bdf1f951 (the commit of
/work/shared/reference/vectors/peer-vectors.json), src/diffusers/schedulers/scheduling_{ddim,euler_discrete,
euler_ancestral_discrete,dpmsolver_multistep,flow_match_euler_discrete}.py. Arithmetic follows the dtypes
diffusers computes with: float32 where it uses float32 torch tensors, float64 where it uses numpy
(``np.interp``, Karras sigmas, ``_sigma_to_t``, the flow-matching linspace). Only the options the variant
vectors use are ported; anything else raises. Used by generate_variants.py.
"""
import numpy as np

F = np.float32
sq = np.square  # keeps float32 (a numpy float32 scalar ** 2 would be float64)


# ---------------------------------------------------------------- schedule (float32, as torch computes it)
def torch_linspace_f32(start, end, steps, lanes=8):
    """torch.linspace(start, end, steps, dtype=float32) as torch 1.13's CPU kernel (AVX2 build) computes it.

    The rule is ``start + step * i`` for the first half and ``end - step * (steps - 1 - i)`` for the rest, with
    ``step = (end - start) / (steps - 1)`` in float32. The AVX2 kernel fills 8 lanes at a time from a base
    computed with a fused multiply-add (one rounding) and adds ``lane * step`` to it in float32; the tail that
    does not fill two vectors uses the fused scalar rule. The plain rule differs from this in one float32 ulp
    for about a quarter of SD1.5's betas; emulating the kernel reproduces peer-vectors.json's betas exactly.
    """
    start, end = F(start), F(end)
    step = F((end - start) / F(steps - 1))
    half = steps // 2
    fused = lambda i: F(np.float64(start) + np.float64(step) * i) if i < half else F(np.float64(end) - np.float64(step) * (steps - 1 - i))  # noqa: E731
    out = np.empty(steps, dtype=F)
    i = 0
    while i <= steps - 2 * lanes:
        for _ in range(2):
            base = fused(i)
            out[i:i + lanes] = [base] + [base + F(j) * step for j in range(1, lanes)]
            i += lanes
    out[i:] = [fused(k) for k in range(i, steps)]
    return out


def alphas_cumprod(cfg):
    T, kind = cfg.get("num_train_timesteps", 1000), cfg.get("beta_schedule", "linear")
    b0, b1 = cfg.get("beta_start", 0.0001), cfg.get("beta_end", 0.02)
    if kind == "scaled_linear":
        betas = np.square(torch_linspace_f32(b0**0.5, b1**0.5, T))
    elif kind == "linear":
        betas = torch_linspace_f32(b0, b1, T)
    else:
        raise NotImplementedError(f"beta_schedule {kind}")
    # torch.cumprod on CPU accumulates float32 inputs in double (acc_type) and stores float32.
    return np.cumprod((F(1) - betas).astype(np.float64)).astype(F), betas


def train_sigmas(acp):
    return np.sqrt((F(1) - acp) / acp)  # float32, increasing in t


def sigma_to_t(sigma, log_sigmas):
    """``_sigma_to_t``: float64 interpolation in log sigma against the float32 table."""
    log_sigma = np.log(np.maximum(sigma, 1e-10))
    dists = log_sigma - log_sigmas[:, np.newaxis]
    low = np.cumsum(dists >= 0, axis=0).argmax(axis=0).clip(max=log_sigmas.shape[0] - 2)
    w = np.clip((log_sigmas[low] - log_sigma) / (log_sigmas[low] - log_sigmas[low + 1]), 0, 1)
    return ((1 - w) * low + w * (low + 1)).reshape(np.shape(sigma))


def karras(sigma_min, sigma_max, n, rho=7.0):
    ramp = np.linspace(0, 1, n)
    return (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho


def spaced(cfg, n, spacing_default, dtype):
    """DDIM / Euler timesteps for ``timestep_spacing`` (DDIM rounds linspace, Euler keeps float32)."""
    T, spacing = cfg.get("num_train_timesteps", 1000), cfg.get("timestep_spacing", spacing_default)
    if spacing == "linspace":
        ts = np.linspace(0, T - 1, n)
        return ts.round()[::-1].astype(np.int64) if dtype == np.int64 else np.linspace(0, T - 1, n, dtype=F)[::-1].copy()
    if spacing == "leading":
        return ((np.arange(0, n) * (T // n)).round()[::-1].astype(dtype) + cfg.get("steps_offset", 0)).astype(dtype)
    if spacing == "trailing":
        return (np.round(np.arange(T, 0, -T / n)).astype(dtype) - 1).astype(dtype)
    raise NotImplementedError(f"timestep_spacing {spacing}")


# ---------------------------------------------------------------- DDIM (scheduling_ddim.py)
def ddim_config(cfg):
    if cfg.get("clip_sample", True) or cfg.get("thresholding", False):
        raise NotImplementedError("the port has no clip_sample / thresholding; set clip_sample false")
    acp, _ = alphas_cumprod(cfg)
    final = F(1) if cfg.get("set_alpha_to_one", True) else acp[0]
    return acp, final


def ddim_step(cfg, acp, final, n, t, x, out, eta, noise):
    prev = t - cfg.get("num_train_timesteps", 1000) // n
    a_t = acp[t]
    a_p = acp[prev] if prev >= 0 else final
    b_t = F(1) - a_t
    if cfg.get("prediction_type", "epsilon") == "epsilon":
        x0, eps = (x - np.sqrt(b_t) * out) / np.sqrt(a_t), out
    else:  # v_prediction
        x0, eps = np.sqrt(a_t) * x - np.sqrt(b_t) * out, np.sqrt(a_t) * out + np.sqrt(b_t) * x
    variance = ((F(1) - a_p) / b_t) * (F(1) - a_t / a_p)
    std = F(eta) * np.sqrt(variance)
    x_prev = np.sqrt(a_p) * x0 + np.sqrt(F(1) - a_p - sq(std)) * eps
    if eta > 0:
        x_prev = x_prev + std * noise
    return x_prev.astype(F), x0.astype(F)


def ddim_run(cfg, n, eta, x_init, outputs, noises):
    acp, final = ddim_config(cfg)
    ts = spaced(cfg, n, "leading", np.int64)
    x, after = x_init, []
    for i, t in enumerate(ts):
        x, _ = ddim_step(cfg, acp, final, n, int(t), x, outputs[i], eta, noises[i] if eta > 0 else None)
        after.append(x)
    return {"timesteps": [int(t) for t in ts], "x_after_step": after}


# ---------------------------------------------------------------- Euler / Euler ancestral
def euler_set_timesteps(cfg, n):
    acp, _ = alphas_cumprod(cfg)
    full = train_sigmas(acp)
    ts = spaced(cfg, n, "linspace", F)
    sigmas = np.interp(ts, np.arange(0, len(full)), full)
    if cfg.get("use_karras_sigmas", False):
        sigmas = karras(sigmas[-1].item(), sigmas[0].item(), n)
        ts = np.array([sigma_to_t(s, np.log(full)) for s in sigmas])
    sigmas = np.concatenate([sigmas, [0]]).astype(F)
    top = sigmas.max()
    init = top if cfg.get("timestep_spacing", "linspace") in ("linspace", "trailing") else np.sqrt(sq(top) + F(1))
    return ts.astype(F), sigmas, F(init)


def denoised_ve(cfg, sigma, x, out):
    if cfg.get("prediction_type", "epsilon") == "epsilon":
        return x - sigma * out
    return out * (-sigma / np.sqrt(sq(sigma) + F(1))) + x / (sq(sigma) + F(1))  # v_prediction


def euler_run(cfg, n, x_init, outputs, noises=None):
    """EulerDiscreteScheduler (s_churn 0) or, with noises, EulerAncestralDiscreteScheduler."""
    ts, sigmas, _ = euler_set_timesteps(cfg, n)
    x, after, scaled = x_init, [], []
    for i in range(n):
        s, s_next = sigmas[i], sigmas[i + 1]
        scaled.append((x / np.sqrt(sq(s) + F(1))).astype(F))
        x0 = denoised_ve(cfg, s, x, outputs[i])
        if noises is None:
            x = x + (x - x0) / s * (s_next - s)
        else:
            up = np.sqrt(sq(s_next) * (sq(s) - sq(s_next)) / sq(s))
            down = np.sqrt(sq(s_next) - sq(up))
            x = x + (x - x0) / s * (down - s) + noises[i] * up
        x = x.astype(F)
        after.append(x)
    return {"sigmas": sigmas, "timesteps": ts, "x_after_step": after, "scaled_model_input_per_step": scaled}


# ---------------------------------------------------------------- DPM-Solver++(2M) (scheduling_dpmsolver_multistep.py)
def dpm_set_timesteps(cfg, n):
    acp, _ = alphas_cumprod(cfg)
    full = train_sigmas(acp)
    T = cfg.get("num_train_timesteps", 1000)
    if cfg.get("use_karras_sigmas", False):
        sigmas = karras(full[0].item(), full[-1].item(), n)
        ts = np.array([sigma_to_t(s, np.log(full)) for s in sigmas]).round()
    elif cfg.get("timestep_spacing", "linspace") == "linspace":
        ts = np.linspace(0, T - 1, n + 1).round()[::-1][:-1].copy().astype(np.int64)
        sigmas = np.interp(ts, np.arange(0, len(full)), full)
    else:
        raise NotImplementedError("the port covers DPM-Solver's Karras and linspace timesteps")
    return ts.astype(np.int64), np.concatenate([sigmas, [0]]).astype(F)


def vp_coefficients(sigma):
    alpha = F(1) / np.sqrt(sq(sigma) + F(1))
    return alpha, sigma * alpha


def dpm_run(cfg, n, x_init, outputs):
    assert cfg.get("algorithm_type", "dpmsolver++") == "dpmsolver++" and cfg.get("solver_order", 2) == 2
    assert cfg.get("solver_type", "midpoint") == "midpoint" and cfg.get("final_sigmas_type", "zero") == "zero"
    ts, sigmas = dpm_set_timesteps(cfg, n)
    # Scalar log / exp rounded once from float64, as torch's 0-d float32 tensors get them (numpy's float32
    # kernels may be an ulp off).
    lg = lambda v: F(np.log(np.float64(v)))  # noqa: E731
    ex = lambda v: F(np.exp(np.float64(v)))  # noqa: E731
    lam = lambda s: lg(vp_coefficients(s)[0]) - lg(vp_coefficients(s)[1])  # noqa: E731
    x, after, history = x_init, [], []
    with np.errstate(divide="ignore"):  # log(0) at the final sigma: lambda = inf, exp(-h) = 0, x' = x0
        for i in range(n):
            a_s, s_s = vp_coefficients(sigmas[i])
            if cfg.get("prediction_type", "epsilon") == "epsilon":
                x0 = (x - s_s * outputs[i]) / a_s
            else:
                x0 = a_s * x - s_s * outputs[i]
            history.append(x0)
            a_t, s_t = vp_coefficients(sigmas[i + 1])
            h = lam(sigmas[i + 1]) - lam(sigmas[i])
            first = i == 0 or i == n - 1  # lower_order_final with final_sigmas_type "zero"
            x = (s_t / s_s) * x - (a_t * (ex(-h) - F(1))) * x0
            if not first:
                r0 = (lam(sigmas[i]) - lam(sigmas[i - 1])) / h
                x = x - F(0.5) * (a_t * (ex(-h) - F(1))) * ((F(1) / r0) * (x0 - history[-2]))
            x = x.astype(F)
            after.append(x)
    return {"sigmas": sigmas, "timesteps": [int(t) for t in ts], "x_after_step": after}


# ---------------------------------------------------------------- flow matching (scheduling_flow_match_euler_discrete.py)
def flow_run(cfg, n, x_init, outputs):
    T, shift = cfg.get("num_train_timesteps", 1000), float(cfg.get("shift", 1.0))
    train = np.linspace(1, T, T, dtype=F)[::-1] / F(T)
    train = (F(shift) * train / (F(1) + F(shift - 1) * train)).astype(F)
    s_min, s_max = train[-1].item(), train[0].item()
    sig = np.linspace(s_max * T, s_min * T, n) / T
    sig = (shift * sig / (1 + (shift - 1) * sig)).astype(F)
    sigmas = np.concatenate([sig, [F(0)]]).astype(F)
    x, after = x_init, []
    for i in range(n if outputs is not None else 0):
        x = (x + (sigmas[i + 1] - sigmas[i]) * outputs[i]).astype(F)
        after.append(x)
    return {"init_sigma_min": s_min, "init_sigma_max": s_max, "sigmas": sigmas, "timesteps": (sig * F(T)).astype(F), "x_after_step": after}
