"""What the benchmarks record about the machine they ran on."""

from __future__ import annotations


def cpu_model() -> str | None:
    """The CPU's model name (``/proc/cpuinfo``), or ``None`` where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    except OSError:
        return None
