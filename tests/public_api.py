"""The walk over jaxid's public API shared by the convention and annotation tests."""

import importlib
import inspect
import pkgutil

import jaxid


def all_modules() -> list[str]:
    """``jaxid`` and every module under it (``__main__`` excluded)."""
    names = [m.name for m in pkgutil.walk_packages(jaxid.__path__, "jaxid.")]
    return ["jaxid"] + [n for n in names if not n.endswith("__main__")]


def exported(modules) -> dict:
    """``{module.name: object}`` for every name in each module's ``__all__``, each object once
    (under the first name that exports it)."""
    out, seen = {}, set()
    for module in modules:
        mod = importlib.import_module(module)
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if id(obj) not in seen:
                seen.add(id(obj))
                out[f"{module}.{name}"] = obj
    return out


def is_function(obj) -> bool:
    """A callable that is neither a class nor a module."""
    return callable(obj) and not inspect.isclass(obj) and not inspect.ismodule(obj)
