"""The demo's data: synthetic, deterministic accelerometer frames of a rolling-element bearing.

``make_dataset`` synthesises vibration frames from nothing but uniform doubles
drawn with ``Generator(PCG64(...)).random`` (a stream numpy promises to keep
stable), derives Gaussian noise itself with Box-Muller, and rounds every value
onto the 16-bit grid (multiples of 2**-15) -- i.e. it models a 16-bit ADC.
Rounding to that coarse grid also absorbs the last-ulp differences that
``sin``/``exp``/``log`` can show between libm/SIMD implementations, so the
float32 frames are the same bit for bit across machines and numpy versions (a
difference would need a transcendental result to sit within ~1e-16 of a
rounding tie).  What the frames contain: qverify.demo.DESCRIPTION.
"""

from __future__ import annotations

import numpy as np

FRAME_LEN = 4096
SAMPLE_RATE_HZ = 25_600.0

# Each split has its own base seed; sample i of a split is generated from
# PCG64(SeedSequence([split_seed, i])) and depends on nothing else, so splits are
# disjoint and make_dataset(100, s) is a prefix of make_dataset(1000, s).
SPLIT_SEEDS: dict[str, int] = {
    "train": 0x5EED_0001,
    "calib": 0x5EED_0002,
    "test": 0x5EED_0003,
}

_N_HARM = 6  # shaft harmonics 1x..6x
_N_IMP = 64  # max impacts per frame (0.16 s * 375 Hz = 60, plus margin)
# Layout of the uniform doubles drawn per sample (same for both labels, so the
# stream never depends on the label).
_P_SCALARS = 16
_N_UNIF = _P_SCALARS + 2 * _N_HARM + 2 * _N_IMP + FRAME_LEN
_TWO_PI = 2.0 * np.pi
_Q = 32768.0  # 2**15
# Peak impact amplitude as a multiple of the noise s.d., drawn log-uniformly.
# The shipped model detects almost every fault above ~4x and few below ~2x.
_SEVERITY = (1.5, 30.0)


def _uniforms(split_seed: int, start: int, stop: int) -> np.ndarray:
    """Uniform doubles in [0, 1), one row of _N_UNIF per sample index."""
    out = np.empty((stop - start, _N_UNIF), dtype=np.float64)
    for row, i in enumerate(range(start, stop)):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([split_seed, i])))
        out[row] = rng.random(_N_UNIF)
    return out


def _loguniform(u: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return lo * (hi / lo) ** u


_SPLIT = 64  # sample index n = _SPLIT * a + b
_NA = FRAME_LEN // _SPLIT
_IDX_A = (_SPLIT * np.arange(_NA, dtype=np.float64))[None, :]
_IDX_B = np.arange(_SPLIT, dtype=np.float64)[None, :]


def _split_angles(omega: np.ndarray, phi: np.ndarray):
    """sin/cos of omega*n_a + phi and of omega*n_b for the split n = n_a + n_b."""
    ang_a = omega[..., None] * _IDX_A + phi[..., None]  # (..., NA)
    ang_b = omega[..., None] * _IDX_B  # (..., SPLIT)
    return np.sin(ang_a), np.cos(ang_a), np.sin(ang_b), np.cos(ang_b)


def _tones(omega: np.ndarray, amp: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """sum_k amp[:, k] * sin(omega[:, k] * n + phi[:, k]) for n = 0..FRAME_LEN-1.

    omega (m, K) is in radians per sample.  With n = 64 a + b the angle-addition
    formula turns the sum into one small batched matrix product per row, so only
    2 * (64 + 64) transcendental calls per tone are needed instead of 4096.
    """
    sa, ca, sb, cb = _split_angles(omega, phi)  # (m, K, 64) each
    left = np.concatenate([amp[..., None] * sa, amp[..., None] * ca], axis=1)  # (m, 2K, NA)
    right = np.concatenate([cb, sb], axis=1)  # (m, 2K, SPLIT)
    out = np.matmul(left.transpose(0, 2, 1), right)  # (m, NA, SPLIT)
    return out.reshape(omega.shape[0], FRAME_LEN)


def _sincos(omega: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sin/cos(omega * n) for n = 0..FRAME_LEN-1, shape (m, FRAME_LEN); omega (m,)."""
    sa, ca, sb, cb = _split_angles(omega, np.zeros_like(omega))
    sa, ca = sa[:, :, None], ca[:, :, None]
    sb, cb = sb[:, None, :], cb[:, None, :]
    m = omega.shape[0]
    return (sa * cb + ca * sb).reshape(m, FRAME_LEN), (ca * cb - sa * sb).reshape(m, FRAME_LEN)


def _synth(u: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Turn per-sample uniforms (m, _N_UNIF) and labels (m,) into frames (m, 4096)."""
    m = u.shape[0]
    s = u[:, :_P_SCALARS]
    o = _P_SCALARS
    u_hamp = u[:, o : o + _N_HARM]
    o += _N_HARM
    u_hphase = u[:, o : o + _N_HARM]
    o += _N_HARM
    u_jit = u[:, o : o + _N_IMP]
    o += _N_IMP
    u_iamp = u[:, o : o + _N_IMP]
    o += _N_IMP
    u_noise = u[:, o : o + FRAME_LEN]

    col = lambda v: v[:, None]  # noqa: E731
    n_idx = np.arange(FRAME_LEN, dtype=np.float64)[None, :]  # sample index
    t = n_idx / SAMPLE_RATE_HZ  # seconds, (1, L)

    # --- machine: shaft harmonics + optional gear mesh ----------------------
    f_shaft = 10.0 + 40.0 * s[:, 0]  # 600-3000 rpm
    h = np.arange(1, _N_HARM + 1, dtype=np.float64)  # (H,)
    # 1x dominant, higher harmonics random and falling off
    amp = np.where(h == 1, 0.5 + 0.5 * u_hamp, u_hamp * 0.8 / h)  # (m, H)
    teeth = np.floor(15.0 + 26.0 * s[:, 1])  # 15..40 teeth
    gear_amp = np.where(s[:, 2] < 0.5, 0.0, 0.6 * s[:, 3])  # half the machines
    omega = np.concatenate([col(f_shaft) * h, col(teeth * f_shaft)], axis=1)
    omega *= _TWO_PI / SAMPLE_RATE_HZ
    amps = np.concatenate([amp, col(gear_amp)], axis=1)
    phis = _TWO_PI * np.concatenate([u_hphase, s[:, 4:5]], axis=1)
    sig = _tones(omega, amps, phis)

    # --- broadband noise (Box-Muller on the sample's own uniforms) ----------
    u1 = 1.0 - u_noise[:, 0::2]  # (0, 1]
    u2 = _TWO_PI * u_noise[:, 1::2]
    r = np.sqrt(-2.0 * np.log(u1))
    noise = np.empty((m, FRAME_LEN), dtype=np.float64)
    noise[:, 0::2] = r * np.cos(u2)
    noise[:, 1::2] = r * np.sin(u2)
    noise_sd = _loguniform(s[:, 5], 0.15, 0.6)
    sig += col(noise_sd) * noise

    # --- bearing fault: impacts ringing a structural resonance --------------
    inner = s[:, 6] < 0.5
    order = np.where(inner, 5.0 + 2.5 * s[:, 7], 3.0 + 2.0 * s[:, 7])
    f_fault = order * f_shaft  # 30-375 Hz
    period = 1.0 / f_fault
    t0 = period * s[:, 8]  # first impact within the first period
    f_res = 2000.0 + 6000.0 * s[:, 9]
    zeta = 0.03 + 0.07 * s[:, 10]
    tau = 1.0 / (zeta * _TWO_PI * f_res)  # ring-down time constant, ~0.3-2.7 ms
    # peak impact amplitude relative to the noise floor; log-uniform so that a
    # share of faults (roughly the weakest fifth) is marginal
    severity = _loguniform(s[:, 11], *_SEVERITY) * noise_sd
    mod_depth = np.where(inner, 0.3 + 0.7 * s[:, 12], 0.0)
    mod_phase = _TWO_PI * s[:, 13]
    jitter = 0.04 * (u_jit - 0.5)  # +-2 % of a period (bearing slip)
    imp_amp = 0.6 + 0.4 * u_iamp

    # Impact times and gains, one per impact k, shape (m, _N_IMP).
    kk = np.arange(_N_IMP, dtype=np.float64)[None, :]
    t_imp = col(t0) + (kk + jitter) * col(period)
    g_imp = (
        imp_amp
        * (1.0 + col(mod_depth) * np.cos(_TWO_PI * col(f_shaft) * t_imp + col(mod_phase)))
        / col(1.0 + mod_depth)
    )
    # ring(t - t_k) = exp(-(t - t_k)/tau) sin(w (t - t_k)), and
    # sin(w (t - t_k)) = sin(w t) cos(w t_k) - cos(w t) sin(w t_k).
    w_res = _TWO_PI * f_res
    wt_imp = col(w_res) * t_imp
    cos_imp, sin_imp = g_imp * np.cos(wt_imp), g_imp * np.sin(wt_imp)

    # Sum over the latest few impacts k (t_k <= t); k_est is the last impact
    # whose jittered time can be <= t.  The ring-down time constant is at most
    # ~2.7 ms and impacts are >= 2.67 ms apart, so impacts older than two
    # periods have decayed below ~13 % (usually far below) and are dropped.
    # Only faulty rows are computed.
    f_rows = np.flatnonzero(y == 1)
    if f_rows.size:
        fr = f_rows[:, None]
        k_est = np.floor((t - t0[fr] + 0.02 * period[fr]) / period[fr]).astype(np.int64)
        row_base = np.arange(f_rows.size, dtype=np.int64)[:, None] * _N_IMP
        table = np.stack([t_imp[f_rows], cos_imp[f_rows], sin_imp[f_rows]], axis=-1)
        table = table.reshape(f_rows.size * _N_IMP, 3)
        fault = np.zeros((f_rows.size, FRAME_LEN), dtype=np.float64)
        inv_tau = 1.0 / tau[fr]
        sr, cr = _sincos(w_res[f_rows] / SAMPLE_RATE_HZ)  # sin/cos(w t), t = n / fs
        for dk in (-2, -1, 0):
            k = k_est + dk
            valid = (k >= 0) & (k < _N_IMP)
            np.clip(k, 0, _N_IMP - 1, out=k)
            k += row_base
            g = np.take(table, k, axis=0)  # (mf, L, 3)
            dt = t - g[..., 0]
            valid &= dt >= 0.0
            env = np.exp(np.where(valid, -dt * inv_tau, -np.inf))  # 0 where invalid
            fault += env * (sr * g[..., 1] - cr * g[..., 2])
        sig[f_rows] += severity[fr] * fault

    # --- sensor: random RMS level, 16-bit ADC, clip -------------------------
    rms = np.sqrt(np.mean(sig * sig, axis=1))
    level = _loguniform(s[:, 14], 0.04, 0.12)
    x = sig * col(level / rms)
    x = np.rint(x * _Q) / _Q
    np.clip(x, -1.0, 1.0 - 1.0 / _Q, out=x)
    return x.astype(np.float32)


def make_dataset(n: int, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x, y)``: ``n`` synthetic accelerometer frames of one split.

    ``x`` is float32 ``(n, 4096)`` with values on the 2**-15 grid in
    ``[-1, 1 - 2**-15]``; ``y`` is int8 ``(n,)`` (1 = bearing fault, 0 = healthy,
    sample ``i`` has label ``i % 2``).  Sample ``i`` depends only on
    ``(split, i)``, so smaller ``n`` gives a prefix of larger ``n``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"n must be a positive integer, got {n!r}")
    n = int(n)
    if n <= 0:
        raise ValueError(f"n must be a positive integer, got {n}")
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_SEEDS)}")
    seed = SPLIT_SEEDS[split]
    y = (np.arange(n) % 2).astype(np.int8)
    x = np.empty((n, FRAME_LEN), dtype=np.float32)
    chunk = 32  # small float64 temporaries (cache-friendly, no page-fault churn)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        x[a:b] = _synth(_uniforms(seed, a, b), y[a:b])
    return x, y
