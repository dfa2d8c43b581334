"""Test configuration: float64 everywhere (Fisher ranks and tight references need it)."""

import jax

jax.config.update("jax_enable_x64", True)
