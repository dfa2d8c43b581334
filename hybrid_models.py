import time as _t, jax as _jax
_c={'n':0,'t':0.0}
_jax.monitoring.register_event_duration_secs_listener(lambda e,d,**k: (_c.__setitem__('n',_c['n']+1), _c.__setitem__('t',_c['t']+d)) if e=='/jax/core/compile/backend_compile_duration' else None)
_T=_t.perf_counter()

import jax

jax.config.update("jax_enable_x64", True)  # for the truth simulations; the models train in float32
import matplotlib.pyplot as plt
import numpy as np

from jaxid import hybrid
print('@@ cell 1', round(_t.perf_counter()-_T,1), 'compiles', _c['n'], round(_c['t'],1), flush=True); _T=_t.perf_counter(); _c['n']=0; _c['t']=0.0

data = hybrid.make_hybrid_data(
    "pendulum",
    key=jax.random.key(0),
    tasks=8,
    per_task=6,
    val_tasks=2,
    test_tasks=4,
    ood_tasks=3,
    progress=False,
)
sys = data.system
print(sys.physics_names, sys.factor_names, data.train.obs.shape)
fig, ax = plt.subplots(figsize=(7, 2.5))
for j in range(3):
    ax.plot(sys.ts, data.train.obs[0, j, :, 0], lw=1)
ax.axvline(sys.ts[sys.n_train - 1], color="0.4", ls=":")
ax.set(
    xlabel="t [s]", ylabel="theta", title="three sequences of one task (training window | prediction window)"
);
print('@@ cell 3', round(_t.perf_counter()-_T,1), 'compiles', _c['n'], round(_c['t'],1), flush=True); _T=_t.perf_counter(); _c['n']=0; _c['t']=0.0

config = hybrid.HybridTrainConfig(
    steps=240, batch_size=16, learning_rate=3e-3, context_size=3, steps_per_call=60, progress=False
)
scales = data.scales()
fitted, scores = {}, {}
for kind in hybrid.MODEL_KINDS:
    model = hybrid.make_model(kind, sys, scales, key=jax.random.key(1), width=32)
    fitted[kind] = hybrid.fit(model, data, config).model
    scores[kind] = {
        split: hybrid.evaluate(fitted[kind], getattr(data, split), context_size=3)
        for split in ("test", "ood")
    }

print(f"{'model':16s} {'split':5s} {'MSE z_p':>9s} {'MCC z_n':>8s} {'MSE rec':>9s} {'MSE pred':>9s}")
for kind, s in scores.items():
    for split, ev in s.items():
        print(
            f"{hybrid.MODEL_LABELS[kind]:16s} {split:5s} {ev.z_p_mse:9.4f} {ev.mcc:8.3f} "
            f"{ev.recon_mse:9.4f} {ev.pred_mse:9.4f}"
        )
print('@@ cell 5', round(_t.perf_counter()-_T,1), 'compiles', _c['n'], round(_c['t'],1), flush=True); _T=_t.perf_counter(); _c['n']=0; _c['t']=0.0

prior_variance = (3.14 - 0.785) ** 2 / 12
z_n = data.test.flat("z_n")
recovered = z_n[:, [2, 0, 1]] * np.array([-2.0, 0.5, 3.0]) + 1.0  # each factor, affinely, reordered
rng = np.random.default_rng(0)
chance = np.array([hybrid.mcc(z_n, rng.standard_normal(z_n.shape)) for _ in range(200)])
print(f"MCC of noise latents: mean {chance.mean():.3f}, 95th percentile {np.percentile(chance, 95):.3f}")
assert abs(hybrid.mcc(z_n, recovered) - 1.0) < 1e-12
assert np.percentile(chance, 95) < 0.5
for kind, s in scores.items():
    assert np.isfinite(s["test"].pred_mse)
    assert s["test"].z_p_mse < prior_variance, kind
    above = (s["test"].mcc > chance).mean()
    label = hybrid.MODEL_LABELS[kind]
    print(f"{label:16s} MCC {s['test'].mcc:.3f}, above {100 * above:.0f}% of the noise draws")
print('@@ cell 7', round(_t.perf_counter()-_T,1), 'compiles', _c['n'], round(_c['t'],1), flush=True); _T=_t.perf_counter(); _c['n']=0; _c['t']=0.0

fig, axes = plt.subplots(1, 3, figsize=(14, 3.2))
clean = data.test.flat("clean")
axes[0].plot(sys.ts, clean[0, :, 0], "k", lw=1.5, label="truth")
for kind in hybrid.MODEL_KINDS:
    axes[0].plot(sys.ts, scores[kind]["test"].decoded[0, :, 0], lw=1, label=hybrid.MODEL_LABELS[kind])
axes[0].axvline(sys.ts[sys.n_train - 1], color="0.4", ls=":")
axes[0].set(xlabel="t [s]", ylabel="theta", title="ID test sequence")
axes[0].legend(fontsize=7)
z_p, z_n = data.test.flat("z_p")[:, 0], data.test.flat("z_n")
for kind in hybrid.MODEL_KINDS:
    ev = scores[kind]["test"]
    axes[1].plot(z_p, ev.z_p[:, 0], ".", ms=4, label=hybrid.MODEL_LABELS[kind])
    _, match = hybrid.mcc(z_n, ev.z_a, return_matching=True)
    axes[2].plot(z_n[:, 1], ev.z_a[:, match[1]], ".", ms=4)
axes[1].plot([0.785, 3.14], [0.785, 3.14], "k--", lw=0.8)
axes[1].set(xlabel="true omega", ylabel="inferred omega")
axes[2].set(xlabel="true forcing amplitude A", ylabel="matched neural latent")
fig.tight_layout()
print('@@ cell 9', round(_t.perf_counter()-_T,1), 'compiles', _c['n'], round(_c['t'],1), flush=True); _T=_t.perf_counter(); _c['n']=0; _c['t']=0.0

meta = fitted["meta_hybrid_vae"]
ctx = jax.numpy.asarray(data.test.obs[0, :3, : sys.n_train])
gap = float(np.max(np.abs(meta.context_code(ctx) - meta.context_code(ctx[::-1]))))
print(gap)
assert gap < 1e-5  # float32 sums in another order
print('@@ cell 11', round(_t.perf_counter()-_T,1), 'compiles', _c['n'], round(_c['t'],1), flush=True); _T=_t.perf_counter(); _c['n']=0; _c['t']=0.0
