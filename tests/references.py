"""Independent NumPy/SciPy references for the smooth models (no jaxid code is used here)."""

import numpy as np
from scipy.integrate import solve_ivp
from scipy.linalg import expm


def solve(rhs, y0, ts, rtol=1e-10, atol=1e-12):
    """scipy DOP853 at rtol 1e-10 on the save grid."""
    sol = solve_ivp(
        rhs, (ts[0], ts[-1]), np.asarray(y0, float), method="DOP853", t_eval=ts, rtol=rtol, atol=atol
    )
    assert sol.success, sol.message
    return sol.y.T


def pendulum_rhs(m, L, b, g):
    def rhs(t, y):
        return [y[1], -(g / L) * np.sin(y[0]) - b / (m * L * L) * y[1]]

    return rhs


def forced_pendulum_rhs(omega, gamma, A, f):
    def rhs(t, y):
        return [y[1], -(omega**2) * np.sin(y[0]) - gamma * y[1] + A * omega**2 * np.cos(2 * np.pi * f * t)]

    return rhs


def double_pendulum_rhs(m1, m2, l1, l2, g):
    """The undamped double pendulum in the explicit form of the classic textbook solution."""

    def rhs(t, y):
        t1, t2, w1, w2 = y
        den = 2 * m1 + m2 - m2 * np.cos(2 * t1 - 2 * t2)
        a1 = (
            -g * (2 * m1 + m2) * np.sin(t1)
            - m2 * g * np.sin(t1 - 2 * t2)
            - 2 * np.sin(t1 - t2) * m2 * (w2**2 * l2 + w1**2 * l1 * np.cos(t1 - t2))
        ) / (l1 * den)
        a2 = (
            2
            * np.sin(t1 - t2)
            * (w1**2 * l1 * (m1 + m2) + g * (m1 + m2) * np.cos(t1) + w2**2 * l2 * m2 * np.cos(t1 - t2))
        ) / (l2 * den)
        return [w1, w2, a1, a2]

    return rhs


def damped_double_pendulum_rhs(m1, m2, l1, l2, g, b1, b2):
    """Lagrange equations with Rayleigh dissipation, solved numerically for the accelerations."""

    def rhs(t, y):
        t1, t2, w1, w2 = y
        d = t1 - t2
        M = np.array([[(m1 + m2) * l1**2, m2 * l1 * l2 * np.cos(d)], [m2 * l1 * l2 * np.cos(d), m2 * l2**2]])
        # generalised forces: -dV/dq, Coriolis terms, -dR/dw with R = b1 w1^2/2 + b2 (w2 - w1)^2/2
        q1 = -m2 * l1 * l2 * w2**2 * np.sin(d) - (m1 + m2) * g * l1 * np.sin(t1) - b1 * w1 + b2 * (w2 - w1)
        q2 = m2 * l1 * l2 * w1**2 * np.sin(d) - m2 * g * l2 * np.sin(t2) - b2 * (w2 - w1)
        acc = np.linalg.solve(M, [q1, q2])
        return [w1, w2, *acc]

    return rhs


def advection_diffusion_matrix(D, c, n, dx):
    """The matrix A of the method-of-lines system u' = A u (zero values outside the grid)."""
    A = np.zeros((n, n))
    for i in range(n):
        A[i, i] = -2 * D / dx**2
        if i > 0:
            A[i, i - 1] = D / dx**2 + c / (2 * dx)
        if i < n - 1:
            A[i, i + 1] = D / dx**2 - c / (2 * dx)
    return A


def advection_diffusion_exact(D, c, n, dx, u0, ts):
    """Exact solution of the linear method-of-lines system: u(t) = expm(A (t - t0)) u0."""
    A = advection_diffusion_matrix(D, c, n, dx)
    return np.stack([expm(A * (t - ts[0])) @ u0 for t in ts])


def walker_reference(m, k, l0, alpha0, g, state, ts, *, foot=0.0, rtol=1e-11, atol=1e-12, method="DOP853"):
    """Geyer's walker as a scipy ``solve_ivp`` event loop, written from the equations alone.

    Starts in single support on ``foot`` from ``state = (x, y, vx, vy)``. Each phase is one
    ``solve_ivp`` call with terminal events (touch-down after mid-stance, take-off of the rear leg,
    and the failures); the next phase restarts from the event state. Returns
    ``(states at ts (NaN after a failure), number of phases, failure name or None)``.
    """
    ts = np.asarray(ts, float)
    y_td = l0 * np.sin(alpha0)

    def rhs(feet):
        def f(t, s):
            x, y, vx, vy = s
            ax, ay = 0.0, -g
            for fx in feet:
                length = np.hypot(x - fx, y)
                c = k / m * (l0 / length - 1.0)
                ax += c * (x - fx)
                ay += c * y
            return [vx, vy, ax, ay]

        return f

    def terminal(fun, direction):
        fun.terminal = True
        fun.direction = direction
        return fun

    out = np.full((len(ts), 4), np.nan)
    t, s, feet, phases = float(ts[0]), np.asarray(state, float), [float(foot)], 1
    while True:
        front = feet[-1]
        events = {
            "fall": terminal(lambda t, s: s[1] - 0.5 * l0, -1),
            "stall": terminal(lambda t, s: s[2], -1),
        }
        if len(feet) == 1:
            events["touch-down"] = terminal(lambda t, s, f=front: (s[1] - y_td) if s[0] > f else 1.0, -1)
            events["flight"] = terminal(lambda t, s, f=front: np.hypot(s[0] - f, s[1]) - l0, 1)
        else:
            rear = feet[0]
            events["take-off"] = terminal(lambda t, s, r=rear: np.hypot(s[0] - r, s[1]) - l0, 1)
            events["front-leg lift-off"] = terminal(lambda t, s, f=front: np.hypot(s[0] - f, s[1]) - l0, 1)
        names = list(events)
        sol = solve_ivp(
            rhs(feet),
            (t, ts[-1]),
            s,
            method=method,
            rtol=rtol,
            atol=atol,
            events=list(events.values()),
            dense_output=True,
        )
        assert sol.status >= 0, sol.message
        inside = (ts >= t) & (ts <= sol.t[-1])
        if inside.any():
            out[inside] = sol.sol(ts[inside]).T
        if sol.status == 0:
            return out, phases, None
        fired = [i for i, te in enumerate(sol.t_events) if len(te)]
        name = names[fired[0]]
        t, s = float(sol.t[-1]), sol.y[:, -1]
        if name == "touch-down":
            feet = [front, s[0] + l0 * np.cos(alpha0)]
        elif name == "take-off":
            feet = [front]
        else:
            out[ts > t] = np.nan
            return out, phases, name
        phases += 1


def walker_period_reference(m, k, l0, alpha0, g, state, *, rtol=1e-12, atol=1e-13, method="DOP853"):
    """One step of Geyer's walker from mid-stance to the next, as a scipy ``solve_ivp`` event loop
    written from the equations alone (independent of jaxid).

    ``state = (y, vx, vy)`` at mid-stance with the stance foot at ``x = 0``. Phases: single support
    until touch-down (``y`` falls through ``l0 sin(alpha0)`` after mid-stance; the new foot lands at
    ``x + l0 cos(alpha0)``), double support until the rear leg reaches ``l0``, single support on the
    new foot until mid-stance (``x`` reaches the foot). Returns ``(section, step_time, step_length,
    states)``: the new ``(y, vx, vy)``, the period, the new foot's position and a function
    ``t -> (len(t), 4)`` states ``(x, y, vx, vy)`` for ``0 <= t <= step_time``; ``None`` if the walker
    fails (falls, stalls or leaves the ground) first.
    """
    y_td = l0 * np.sin(alpha0)

    def rhs(feet):
        def f(t, s):
            x, y, vx, vy = s
            ax, ay = 0.0, -g
            for fx in feet:
                c = k / m * (l0 / np.hypot(x - fx, y) - 1.0)
                ax += c * (x - fx)
                ay += c * y
            return [vx, vy, ax, ay]

        return f

    def terminal(fun, direction):
        fun.terminal = True
        fun.direction = direction
        return fun

    pieces = []
    t, s = 0.0, np.array([0.0, *state], float)
    fails = [terminal(lambda t, s: s[1] - 0.5 * l0, -1), terminal(lambda t, s: s[2], -1)]
    phases = [
        ([0.0], terminal(lambda t, s: (s[1] - y_td) if s[0] > 0.0 else 1.0, -1)),
        None,  # double support: its feet depend on the touch-down
        None,
    ]
    feet, event = phases[0]
    for phase in range(3):
        if phase == 1:
            feet = [0.0, s[0] + l0 * np.cos(alpha0)]
            event = terminal(lambda t, s: np.hypot(s[0], s[1]) - l0, 1)
        elif phase == 2:
            feet = [feet[1]]
            event = terminal(lambda t, s, f=feet[0]: s[0] - f, 1)
        lift = terminal(lambda t, s, f=feet[-1]: np.hypot(s[0] - f, s[1]) - l0, 1)
        sol = solve_ivp(
            rhs(feet), (t, t + 5.0), s, method=method, rtol=rtol, atol=atol,
            events=[event, *fails, lift], dense_output=True,
        )  # fmt: skip
        if sol.status != 1 or len(sol.t_events[0]) == 0:
            return None
        pieces.append((t, sol.t[-1], sol.sol))
        t, s = float(sol.t[-1]), sol.y[:, -1]

    def states(ts):
        ts = np.atleast_1d(np.asarray(ts, float))
        out = np.empty((len(ts), 4))
        done = np.zeros(len(ts), bool)
        for i, (_, t1, f) in enumerate(pieces):
            take = ~done & ((ts <= t1) | (i == len(pieces) - 1))
            if take.any():
                out[take] = f(ts[take]).T
            done |= take
        return out

    return s[1:], t, feet[0], states


def walker_gait_reference(m, k, l0, alpha0, g, height, guess, *, rtol=1e-12, atol=1e-13, xtol=1e-13):
    """The periodic gait at mid-stance height ``height`` by scipy's ``root`` (MINPACK hybrd, finite
    differences) on :func:`walker_period_reference`, started from ``guess = (vx, vy)``.

    Returns ``(vx, vy, step_time, step_length, states)`` or ``None`` when no fixed point is found.
    """
    from scipy.optimize import root

    def residual(u):
        out = walker_period_reference(m, k, l0, alpha0, g, (height, u[0], u[1]), rtol=rtol, atol=atol)
        if out is None:
            return [1e3, 1e3]
        return [out[0][0] - height, out[0][2] - u[1]]

    sol = root(residual, np.asarray(guess, float), method="hybr", options=dict(xtol=xtol))
    # The residual decides (MINPACK may stop "without progress" once it is at rounding level).
    if np.max(np.abs(residual(sol.x))) > 1e-9:
        return None
    _, period, length, states = walker_period_reference(
        m, k, l0, alpha0, g, (height, *sol.x), rtol=rtol, atol=atol
    )
    return sol.x[0], sol.x[1], period, length, states


def tile_period(states, period, length, ts):
    """A periodic record: ``(x, y)`` at ``ts`` from one period's states, ``x`` shifted by
    ``length`` and ``t`` by ``period`` per step."""
    ts = np.asarray(ts, float)
    n = np.floor(ts / period)
    xy = states(ts - n * period)[:, :2].copy()
    xy[:, 0] += n * length
    return xy


def walker_find_gait_reference(m, k, l0, alpha0, g, height, *, rtol=1e-11, atol=1e-12):
    """:func:`walker_gait_reference` from its own starting point: the speed (``vy = 0``) on a grid
    of 0.2 to 0.5 ``sqrt(g l0)`` whose one-step return is closest to periodic. ``None`` when no
    fixed point is found."""
    best, guess = np.inf, None
    for v in np.linspace(0.2, 0.5, 25) * np.sqrt(g * l0):
        out = walker_period_reference(m, k, l0, alpha0, g, (height, v, 0.0), rtol=rtol, atol=atol)
        if out is None:
            continue
        misfit = max(abs(out[0][0] - height) / l0, abs(out[0][1] - v) / np.sqrt(g * l0))
        if misfit < best:
            best, guess = misfit, (v, 0.0)
    if guess is None:
        return None
    return walker_gait_reference(m, k, l0, alpha0, g, height, guess, rtol=rtol, atol=atol)


def pendulum_ridge_moments(truth):
    r"""The posterior mean and sd of ``(m, L, b, g)`` given the exact identifiable pair
    :math:`c_1 = b / (L^2 m)`, :math:`c_2 = g / L`, by quadrature over :math:`(m, g)`: with
    :math:`L = g / c_2` and :math:`b = c_1 g^2 m / c_2^2` the density on the ridge is the prior
    times :math:`|\partial(L, b) / \partial(c_1, c_2)| = g^3 m / c_2^4`, i.e. proportional to
    :math:`g^3 m / b` for uniform ``m``, ``L``, ``g`` and log-uniform ``b``, inside the box of the
    ``pendulum`` study preset (``m``, ``L`` in [0.5, 2], ``b`` in [0.05, 0.5], ``g`` in [9, 10.6])."""
    m, L, b, g = truth
    c1, c2 = b / (L**2 * m), g / L
    M, G = np.meshgrid(np.linspace(0.5, 2.0, 1201), np.linspace(9.0, 10.6, 801), indexing="ij")
    Lr, br = G / c2, c1 * (G / c2) ** 2 * M
    w = np.where((Lr >= 0.5) & (Lr <= 2.0) & (br >= 0.05) & (br <= 0.5), G**3 * M / br, 0.0)
    w /= w.sum()
    mean = np.array([(w * v).sum() for v in (M, Lr, br, G)])
    sd = np.sqrt(np.array([(w * v**2).sum() for v in (M, Lr, br, G)]) - mean**2)
    return mean, sd
