"""Loading the user's Keras model: a saved file, or a factory plus a weights file; and what is wrong with one.

A model file that Keras cannot read gives Keras's error for another problem: an empty or text
`model.keras` says "File not found", a Keras 3 weights file renamed to `w.h5` says "Layer count
mismatch ... found 0 saved layers". So before Keras sees a file, `model_problem` and
`weights_problem` read its first bytes (a .keras model is a zip archive, an .h5 an HDF5 file) and,
for HDF5, its top-level layout (with h5py, which Keras depends on), and name what the file is:

- a whole model: a .keras zip holding config.json (`model.save("x.keras")`), or a legacy HDF5
  with a `model_config` attribute (`model.save("x.h5")`);
- Keras 2 (legacy HDF5) weights: a `layer_names` attribute (Keras 2's `model.save_weights("x.h5")`),
  read by Keras 3 only under a .h5/.hdf5 name;
- Keras 3 weights: top-level groups `layers`/`vars` (`model.save_weights("x.weights.h5")`), read only
  under a .weights.h5 name.

This module imports only the standard library and qverify.errors at the top (h5py only for an HDF5
file, Keras only in load_model), so commands/checks.py runs the same checks before TensorFlow loads.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import warnings
import zipfile
from pathlib import Path

from qverify.errors import ModelError

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
WEIGHTS_SUFFIXES = (".keras", ".weights.h5", ".h5", ".hdf5")  # what keras' load_weights reads, by name
ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
SAVE_MODEL = 'model.save("x.keras")'
SAVE_WEIGHTS = 'model.save_weights("x.weights.h5")'
FORMS = "a .keras/.h5 file, module:Factory or path/file.py:Factory"

# what sniff() returns for a file it recognises
EMPTY, ZIP, HDF5 = "empty", "zip", "hdf5"
# what hdf5_layout() returns
MODEL, KERAS2_WEIGHTS, KERAS3_WEIGHTS, OTHER = "model", "keras2-weights", "keras3-weights", "other"

_LOOKS_LIKE = (  # (leading bytes, what the file is), for a file that is neither zip nor HDF5
    (b"version https://git-lfs", "a Git LFS pointer, not the file itself (run `git lfs pull`)"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"<!DOCTYPE html", "an HTML page (a failed download?)"),
    (b"<html", "an HTML page (a failed download?)"),
    (b"\x08\x01\x12", "a protocol buffer (a TensorFlow SavedModel's saved_model.pb?)"),
)


def sniff(path: str | Path) -> str:
    """EMPTY, ZIP or HDF5; otherwise a phrase saying what the file looks like ("a text file starting '...'")."""
    p = Path(path)
    with p.open("rb") as f:
        head = f.read(512)
        if not head:
            return EMPTY
        if head.startswith(ZIP_MAGIC):
            return ZIP
        if head.startswith(HDF5_MAGIC):
            return HDF5
        for offset in (512, 1024, 2048, 4096):  # an HDF5 user block moves the signature to a power of two
            f.seek(offset)
            if f.read(len(HDF5_MAGIC)) == HDF5_MAGIC:
                return HDF5
    for magic, what in _LOOKS_LIKE:
        if head.lstrip().lower().startswith(magic.lower()):
            return what
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text.rstrip("\x00")):
        first = text.strip().splitlines()[0][:40] if text.strip() else ""
        return f"a text file starting {first!r}" if first else "a text file of blank lines"
    return f"binary data starting {head[:8].hex(' ')}"


def hdf5_layout(path: str | Path) -> tuple[str, list[str]]:
    """(MODEL, KERAS2_WEIGHTS, KERAS3_WEIGHTS or OTHER, the top-level names) of an HDF5 file."""
    try:
        import h5py
    except ImportError:  # keras needs h5py for .h5 files anyway; without it, let keras say so
        return OTHER, []
    try:
        with h5py.File(path, "r") as f:
            attrs, names = set(f.attrs), sorted(f.keys())
            legacy_group = "model_weights" in f and "layer_names" in f["model_weights"].attrs
    except Exception as exc:  # a truncated or damaged file
        raise ModelError(
            f"{path} has an HDF5 signature but cannot be read ({_first_line(exc)}): a truncated or damaged file?"
        ) from exc
    if "model_config" in attrs:
        return MODEL, names
    if "layer_names" in attrs or legacy_group:
        return KERAS2_WEIGHTS, names
    if "layers" in names or "vars" in names:
        return KERAS3_WEIGHTS, names
    return OTHER, names


def zip_layout(path: str | Path) -> tuple[bool, list[str]]:
    """(whether the archive is a Keras model, i.e. holds config.json; its member names)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(
            f"{path} starts like a zip archive but cannot be read ({_first_line(exc)}): a truncated or damaged file?"
        ) from exc
    return "config.json" in names, names


def _some(names: list[str]) -> str:
    return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "") if names else "nothing"


def model_problem(label: str, path: str | Path) -> str | None:
    """What is wrong with `path` as a saved model (one line starting with `label path`), or None.

    `label` names where the path came from: "--model" on the command line, "model file" elsewhere."""
    p = Path(path)
    where = f"{label} {path}"
    if not p.exists():
        return f"{where} does not exist; expected {FORMS}"
    if p.is_dir():
        return (
            f"{where} is a directory (a TensorFlow SavedModel?); expected {FORMS}: load it and save it "
            f"with {SAVE_MODEL}"
        )
    if not os.access(p, os.R_OK):
        return f"{where} is not readable"
    if p.suffix == ".py":
        return f"{where} is a Python file; name its factory: --model {path}:<Factory> (e.g. {path}:Net)"
    if p.suffix not in MODEL_SUFFIXES:
        return (
            f"{where}: not a saved Keras model (suffix '{p.suffix}', not {', '.join(MODEL_SUFFIXES)}); expected {FORMS}"
        )
    kind = sniff(p)
    if kind == EMPTY:
        return f"{where} is an empty file (0 bytes); expected a model saved with {SAVE_MODEL}"
    if kind == ZIP:
        is_model, names = zip_layout(p)
        if not is_model:
            return (
                f"{where} is a zip archive but not a Keras model (no config.json; it holds {_some(names)}); "
                f"expected a model saved with {SAVE_MODEL}"
            )
        if p.suffix != ".keras":
            return (
                f"{where} is a .keras zip archive under a {p.suffix} name (Keras reads it as HDF5); rename it to .keras"
            )
        return None
    if kind == HDF5:
        layout, names = hdf5_layout(p)
        if layout == MODEL:
            if p.suffix == ".keras":
                return (
                    f"{where} is a legacy HDF5 model under a .keras name (Keras reads .keras as a zip); "
                    "rename it to .h5"
                )
            return None
        if layout in (KERAS2_WEIGHTS, KERAS3_WEIGHTS):
            return (
                f"{where} is a weights file ({_weights_kind(layout)}), not a model: it has no model "
                f"config; pass the model's code as --model module:Factory or path/file.py:Factory and this "
                f"file as --weights, or save the whole model with {SAVE_MODEL}"
            )
        return (
            f"{where} is an HDF5 file Keras did not write (no model_config; top level: {_some(names)}); "
            f"expected a model saved with {SAVE_MODEL}"
        )
    return f"{where} is not a Keras model file: it is {kind}; expected a .keras zip or .h5 saved with {SAVE_MODEL}"


def _weights_kind(layout: str) -> str:
    if layout == KERAS2_WEIGHTS:
        return "Keras 2 legacy HDF5 weights, layer_names at the top"
    return f"Keras 3 weights, groups layers/ and vars/ as {SAVE_WEIGHTS} writes them"


def weights_problem(label: str, path: str | Path) -> str | None:
    """What is wrong with `path` as a weights file for keras' `model.load_weights` (one line), or None."""
    p = Path(path)
    where = f"{label} {path}"
    expected = f"a weights file saved with {SAVE_WEIGHTS} (or Keras 2's legacy .h5)"
    if not p.exists():
        return f"{where} does not exist; expected {expected}"
    if p.is_dir():
        return f"{where} is a directory; expected {expected}"
    if not os.access(p, os.R_OK):
        return f"{where} is not readable"
    name = p.name.lower()
    if not name.endswith(WEIGHTS_SUFFIXES):
        return (
            f"{where}: Keras reads weights only from {', '.join(WEIGHTS_SUFFIXES)} files (suffix "
            f"'{p.suffix}'); expected {expected}"
        )
    kind = sniff(p)
    if kind == EMPTY:
        return f"{where} is an empty file (0 bytes); expected {expected}"
    if kind == ZIP:
        is_model, names = zip_layout(p)
        if not is_model:
            return f"{where} is a zip archive but not a Keras model (no config.json; it holds {_some(names)})"
        if not name.endswith(".keras"):
            return f"{where} is a .keras zip archive under a {p.suffix} name (Keras reads it as HDF5); rename it"
        return None  # a whole model: keras takes its weights (load_model says more if they do not fit)
    if kind != HDF5:
        return f"{where} is not a weights file: it is {kind}; expected {expected}"
    if name.endswith(".keras"):
        return f"{where} is an HDF5 file under a .keras name (Keras reads .keras as a zip); rename it to .weights.h5"
    layout, names = hdf5_layout(p)
    keras3_name = name.endswith(".weights.h5")
    if layout == KERAS3_WEIGHTS and not keras3_name:
        return (
            f"{where} holds Keras 3 weights (groups layers/ and vars/, as {SAVE_WEIGHTS} writes them) but "
            f"is named {p.suffix}, which Keras reads as Keras 2 legacy weights (and finds 0 layers); rename "
            f"it to {_renamed(p, '.weights.h5')}"
        )
    if layout in (KERAS2_WEIGHTS, MODEL) and keras3_name:
        what = "a legacy HDF5 model" if layout == MODEL else "Keras 2 legacy HDF5 weights (layer_names at the top)"
        return (
            f"{where} holds {what} but is named .weights.h5, "
            f"which Keras 3 reads as its own layout (and finds none of its variables); rename it to "
            f"{_renamed(p, '.h5')}, or re-save it with {SAVE_WEIGHTS}"
        )
    if layout == OTHER:
        return (
            f"{where} is an HDF5 file Keras did not write (neither layer_names nor layers/, vars/; top "
            f"level: {_some(names)}); expected {expected}"
        )
    return None


def _renamed(p: Path, suffix: str) -> str:
    stem = p.name[: -len(".weights.h5")] if p.name.lower().endswith(".weights.h5") else p.stem
    return str(p.with_name(stem + suffix))


def factory_problem(label: str, spec: str) -> str | None:
    """What is wrong with `module:Factory` / `path/file.py:Factory` found without running any code, or None.

    A submodule (`pkg.mod:Net`) can only be found by importing its package: only its top level is looked up."""
    module, _, attr = spec.rpartition(":")
    where = f"{label} {spec}"
    if not module or not attr.isidentifier():
        return f"{where}: '{attr}' is not a factory name; expected {FORMS}"
    if module.endswith(".py"):
        p = Path(module)
        if not p.is_file():
            problem = "is a directory" if p.is_dir() else "does not exist"
            return f"{where}: the factory's file {_resolved(module)} {problem}; expected a Python file defining {attr}"
        return None
    if not all(part.isidentifier() for part in module.split(".")):
        hint = f"; did you mean --model {module}.py:{attr}?" if Path(module + ".py").is_file() else ""
        return f"{where}: '{module}' is neither a module name nor an existing file; expected {FORMS}{hint}"
    top = module.split(".")[0]
    if not findable(top):
        return module_not_found(where, top, module, attr)
    return None


def module_not_found(where: str, top: str, module: str, attr: str) -> str:
    return (
        f"{where}: no module named '{top}' in the working directory {os.getcwd()} or on sys.path "
        f"({len(sys.path)} entries: PYTHONPATH, the standard library, site-packages); run from the directory "
        f"that holds {top}.py, or give its path: --model path/to/{module.replace('.', '/')}.py:{attr}"
    )


def findable(top: str) -> bool:
    """Whether top-level module `top` can be imported, found without running it. Searches the working
    directory too, as load_model does."""
    if top in sys.modules:
        return True
    try:
        if importlib.util.find_spec(top) is not None:
            return True
    except (ImportError, ValueError):
        return True  # cannot tell without importing: load_model will say
    return importlib.machinery.PathFinder.find_spec(top, [os.getcwd()]) is not None


def _resolved(path: str) -> str:
    p = Path(path)
    return str(path) if p.is_absolute() else f"{path} ({p.resolve()})"


def load_model(model: str | None = None, weights: str | None = None):
    """Load a Keras model.

    Args:
        model: None for the demo; a saved model file (.keras / .h5); or
            `module:Factory` / `path/to/file.py:Factory`, a callable that
            returns an uninitialised model (the notebook's `Net()`).
        weights: optional weights file loaded with `model.load_weights`.

    Returns:
        The Keras model.

    Raises:
        ModelError: the file or factory is missing, is not what it should be, or does not load.
    """
    is_factory = model is not None and ":" in model and not Path(model).exists()
    if model is not None:
        problem = factory_problem("model", model) if is_factory else model_problem("model file", model)
        if problem:
            raise ModelError(problem)
    if weights is not None and (problem := weights_problem("weights file", weights)):
        raise ModelError(problem)
    import keras

    if model is None:
        from qverify import demo

        net = demo.load_model() if weights is None else demo.Net()
    elif is_factory:
        net = _from_factory(model)
    else:
        with _warnings_unless_it_fails():
            try:
                net = keras.models.load_model(Path(model), compile=False)
            except Exception as exc:  # keras raises many types; one line is what the user needs
                raise ModelError(f"model file {model} could not be loaded: {_first_line(exc)}") from exc
    if weights is not None:
        with _warnings_unless_it_fails():
            try:
                net.load_weights(weights)
            except Exception as exc:
                hint = ""
                if _is_whole_model(weights):
                    hint = f" ({weights} is a whole saved model: did you mean --model {weights}?)"
                raise ModelError(f"weights file {weights} does not fit the model: {_first_line(exc)}{hint}") from exc
    return net


@contextlib.contextmanager
def _warnings_unless_it_fails():
    """Keras warns per object it skips before it raises; a failed load is one line (the error), so its warnings
    are dropped. A load that succeeds re-issues them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _is_whole_model(path: str) -> bool:
    try:
        kind = sniff(path)
        return (kind == ZIP and zip_layout(path)[0]) or (kind == HDF5 and hdf5_layout(path)[0] == MODEL)
    except (OSError, ModelError):
        return False


def _from_factory(spec: str):
    module_name, _, attr = spec.rpartition(":")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            mod_spec = importlib.util.spec_from_file_location(path.stem, path)
            assert mod_spec is not None and mod_spec.loader is not None  # a .py path always has a source loader
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules.setdefault(path.stem, module)
            mod_spec.loader.exec_module(module)
        else:
            if "" not in sys.path and "." not in sys.path:
                sys.path.insert(0, "")
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.split(".")[0] == exc.name.split(".")[0] and module_name.startswith(exc.name):
            raise ModelError(module_not_found(f"model {spec}", exc.name, module_name, attr)) from exc
        raise ModelError(
            f"model {spec}: importing '{module_name}' failed: {_first_line(exc)} (a module the factory's code imports)"
        ) from exc
    except Exception as exc:
        raise ModelError(
            f"model {spec}: importing '{module_name}' failed: {type(exc).__name__}: {_first_line(exc)}"
        ) from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        where = getattr(module, "__file__", None) or module_name
        raise ModelError(f"model {spec}: '{attr}' in {where} is not a callable model factory")
    try:
        return factory()
    except Exception as exc:
        raise ModelError(f"factory {spec}() failed: {type(exc).__name__}: {_first_line(exc)}") from exc


def _first_line(exc: Exception) -> str:
    """The message's first line; with the next one when it ends in a colon (Keras: "Example error message ...:")."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]
