"""Cross-compiling the target image and measuring it.

An image is built in two cached steps (cache_root(), keyed by content):

  lib-<key>/   the kernels (cmsis/ or the firmware tree's CMSIS-NN given as
               cmsis_root), the runner (csrc/qv_runner.c), the startup and
               semihosting code (firmware/), compiled for one core and one
               rounding build; key = compiler (path and version), every
               flag, macro and include folder, the content of every source
               and header (those of the tree's include folders too); a tree
               lacking some arm_* functions compiles the others, announced
               as QV_HAVE_<NAME> as on the host (qverify.build);
  img-<key>/   the plan's weights.h and network.c (qverify.mcu.codegen),
               the harness main, linked with the lib objects; key = lib key,
               the generated sources as they are on disk, the test hooks.

Because the image key covers the generated sources as written, a test may
edit them (``patch``) and get its own image, and repeated runs of one plan
do not recompile.  qverify.build locates the kernel sources (and a CMSIS
tree's include folders) for the host build; it is reused here.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from qverify import build, native_lib
from qverify.fs import prune_lru
from qverify.mcu import codegen
from qverify.mcu.errors import TargetBuildError, TargetError
from qverify.mcu.toolchain import Core, Toolchain
from qverify.plan import QuantPlan

DEFAULT_CFLAGS = ("-O2", "-fwrapv")
BASE_CFLAGS = ("-mthumb", "-mfloat-abi=soft", "-std=c99", "-ffunction-sections", "-fdata-sections", "-g")
FIRMWARE_LIB = ("startup.c", "qv_semihost.c")
FIRMWARE_MAIN = "qv_target_main.c"
FIRMWARE_HEADERS = ("qv_semihost.h", "qv_target.h", "qv_network.h")
LINKER_SCRIPT = "mps2.ld"
INJECT_MACROS = {"hang": "QV_INJECT_HANG_OP", "crash": "QV_INJECT_CRASH_OP", "stack": "QV_INJECT_STACK_OP"}


def cache_root() -> Path:
    """Where target builds are kept: $QVERIFY_CACHE_DIR/target, else ~/.cache/qverify/target."""
    return native_lib.cache_dir().parent / "target"


@dataclass
class Image:
    """A linked target image and what it was built from."""

    elf: Path
    directory: Path
    cpu: Core
    rounding: str
    kernels: str  # "bundled" or the CMSIS root
    cflags: tuple[str, ...]
    lib_dir: Path
    cached: bool  # True when nothing had to be compiled
    build_seconds: float = 0.0
    inject: dict = field(default_factory=dict)
    missing_functions: tuple[str, ...] = ()  # arm_* functions the tree lacks (their ops fail)

    @property
    def path(self) -> str:
        return self.cpu.path

    def describe(self) -> str:
        return (
            f"{self.cpu.name} on QEMU {self.cpu.machine} (kernels={self.kernels}; path={self.path}; "
            f"rounding={self.rounding}; arm-none-eabi-gcc {' '.join(self.cflags)})"
        )


def _sha(parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _compile_all(jobs: list[list[str]], cwd: Path) -> None:
    """Run compiler command lines in parallel; raise TargetBuildError with the first failure's output."""

    def one(cmd):
        try:
            return cmd, subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired as exc:
            raise TargetBuildError(f"the cross-compiler did not finish within 600 s: {' '.join(cmd)}") from exc

    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, jobs))
    for cmd, r in results:
        if r.returncode != 0:
            source = next((a for a in cmd if a.endswith(".c")), cmd[-1])
            output = (r.stderr or r.stdout).strip()
            raise TargetBuildError(
                f"cross-compiling {source} failed (exit {r.returncode}): {native_lib.first_error_line(output)}\n"
                f"{output}\ncommand: {' '.join(cmd)}"
            )


CACHE_KEEP = 12  # builds of each kind (lib-<cpu>-<rounding>, img-<cpu>) kept in the cache


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def _publish(tmp: Path, final: Path) -> None:
    """Move a finished build folder into place (a concurrent identical build may have won)."""
    try:
        os.replace(tmp, final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


class ImageBuilder:
    """Builds images for one core, rounding and kernel source.

    Args:
        toolchain: from find_toolchain().
        cpu: the core.
        rounding: 'truncate' (-DARM_NN_TRUNCATE) or 'round'.
        cmsis_root: compile the arm_* kernels from this CMSIS tree (as build.py does for the host).
        cflags: optimisation / code generation flags (default -O2 -fwrapv).
    """

    def __init__(
        self,
        toolchain: Toolchain,
        cpu: Core,
        rounding: str,
        cmsis_root: str | None = None,
        cflags: tuple[str, ...] | None = None,
    ):
        self.toolchain = toolchain
        self.cpu = cpu
        self.rounding = rounding
        self.cflags = tuple(cflags) if cflags is not None else DEFAULT_CFLAGS
        self.build = build
        self.cmsis_root = str(Path(cmsis_root).expanduser().resolve()) if cmsis_root else None
        self.fw = build.FIRMWARE
        self._tree = None
        if self.cmsis_root:
            try:
                self._tree = self.build.find_cmsis_nn(self.cmsis_root)
            except self.build.CmsisTreeError as exc:
                raise TargetError(str(exc)) from exc

    # ---- flags -------------------------------------------------------------
    def _arch_flags(self) -> list[str]:
        return [f"-mcpu={self.cpu.name}", *BASE_CFLAGS]

    def defines(self) -> list[str]:
        d = [f"-DARM_MATH_C{self.cpu.name.split('-')[1].upper()}"]  # ARM_MATH_CM3/CM4/CM7 for old arm_math.h
        if self.cpu.dsp:
            d.append("-DARM_MATH_DSP")
        if self.rounding == "truncate":
            d.append("-DARM_NN_TRUNCATE")
        kernels = self.cmsis_root or "bundled"
        d += [f"-D{m}" for m in self.build.have_macros(self.functions)]
        d.append(f"-DQV_KERNELS_SOURCE={self.build.c_string(kernels)}")
        d.append(f"-DQV_SOURCE_DIGEST={self.build.c_string(self.source_digest)}")
        return d

    @property
    def source_digest(self) -> str:
        return self.build.source_digest(self.cmsis_root)

    @property
    def functions(self) -> tuple[str, ...]:
        """The arm_* functions compiled (all five unless the tree lacks some)."""
        return tuple(fn for fn in self.build.ARM_FUNCTIONS if fn not in self.missing_functions)

    @property
    def missing_functions(self) -> tuple[str, ...]:
        return tuple(self._tree["missing"]) if self._tree else ()

    def include_dirs(self, lib_dir: Path) -> list[Path]:
        if self._tree is None:
            return [self.build.CMSIS_INCLUDE, self.build.CSRC, self.fw]
        # Arm's headers everywhere (the core's own cmsis_compiler.h), plus only our qv_ headers
        core = [self._tree["core_include"]] if self._tree["core_include"] else []
        return [*self._tree["include_dirs"], *core, lib_dir / "include", self.build.CSRC, self.fw]

    def kernel_sources(self) -> list[Path]:
        b = self.build
        arm = self._tree["sources"] if self._tree else {fn: b.CMSIS_SOURCE / f"{fn}.c" for fn in b.ARM_FUNCTIONS}
        # a tree's arm_nntables.c: the tables its activation functions read (the bundled ones hold their own)
        support = [Path(p) for p in self._tree["support"]] if self._tree else []
        return (
            [Path(arm[fn]) for fn in self.functions]
            + support
            + [b.CMSIS_SOURCE / f"{fn}.c" for fn in b.QV_FUNCTIONS]
            + [b.RUNNER_SOURCE]
        )

    def _firmware_files(self) -> list[Path]:
        return [self.fw / n for n in (*FIRMWARE_LIB, FIRMWARE_MAIN, *FIRMWARE_HEADERS, LINKER_SCRIPT)]

    # ---- the cached library of kernel + startup objects ----------------------
    def lib_key(self) -> str:
        # the lib folder's own include path is named by a placeholder: it is derived from this key
        parts = [
            "lib",
            2,
            self.toolchain.gcc,
            self.toolchain.gcc_version,
            self.cpu.name,
            self.rounding,
            self.cmsis_root or "bundled",
            " ".join(self._arch_flags()),
            " ".join(self.cflags),
            " ".join(self.defines()),
            " ".join(str(d) for d in self.include_dirs(Path("<lib>"))),
            " ".join(str(p) for p in self.kernel_sources()),
            self.source_digest,
        ]
        for f in self._firmware_files():
            parts += [f.name, f.read_bytes()]
        return _sha(parts)

    def lib(self) -> tuple[Path, bool]:
        """(folder with the objects, True if it was cached)."""
        prefix = f"lib-{self.cpu.name}-{self.rounding}-"
        final = cache_root() / f"{prefix}{self.lib_key()}"
        if (final / "done").exists():
            _touch(final)
            return final, True
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".lib-", dir=final.parent))
        try:
            if self._tree is not None:
                inc = tmp / "include"
                inc.mkdir()
                for name in self.build.QV_HEADERS:
                    shutil.copy2(self.build.CMSIS_INCLUDE / name, inc / name)
            includes = [f"-I{d}" for d in self.include_dirs(final)]
            # compile with the final include path (inside tmp while building)
            includes = [i.replace(str(final), str(tmp)) for i in includes]
            sources = self.kernel_sources() + [self.fw / n for n in FIRMWARE_LIB]
            names = set()
            jobs = []
            defines = self.defines()
            for src in sources:
                obj = src.stem + ".o"
                if obj in names:
                    raise TargetBuildError(f"two sources named {src.name}")
                names.add(obj)
                jobs.append(
                    [
                        self.toolchain.gcc,
                        *self._arch_flags(),
                        *self.cflags,
                        *defines,
                        *includes,
                        "-c",
                        str(src),
                        "-o",
                        str(tmp / obj),
                    ]
                )
            _compile_all(jobs, tmp)
            (tmp / "done").write_text("\n".join(sorted(names)) + "\n")
            _publish(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        prune_lru(final.parent, CACHE_KEEP, prefix)
        return final, False

    # ---- the image ---------------------------------------------------------
    def image(
        self,
        plan: QuantPlan,
        patch: Callable[[Path], None] | None = None,
        inject: dict | None = None,
        sample_header: str | None = None,
    ) -> Image:
        """Build (or reuse) the image of a plan.

        patch: called with the folder holding the generated weights.h and
            network.c before they are compiled (tests alter the target build's
            copy of a weight this way).
        inject: test hooks {'hang'|'crash'|'stack': op index} compiled into the harness.
        sample_header: text of a sample_input_output.h: network.c is compiled with QVERIFY_SELFTEST and
            the harness runs qv_selftest() on it before the host's inputs.

        weights.h refuses a build of the other rounding; an image built with a rounding other than the
        plan's (a deliberate cross-check, `target --rounding`) is compiled with QVERIFY_NO_ROUNDING_CHECK.
        """
        import time

        t0 = time.perf_counter()
        inject = dict(inject or {})
        for k, v in inject.items():
            if k not in INJECT_MACROS:
                raise TargetError(f"unknown injection '{k}'; expected one of {', '.join(INJECT_MACROS)}")
            if not 0 <= int(v) < len(plan.ops):
                raise TargetError(f"injection {k} at op {v}: the plan has {len(plan.ops)} ops")
        lib_dir, lib_cached = self.lib()
        root = cache_root()
        stage = Path(tempfile.mkdtemp(prefix=".img-", dir=root))
        try:
            codegen.write_sources(plan, stage, sample_header)
            if patch is not None:
                patch(stage)
            macros = self.image_macros(plan, sample_header is not None)
            parts = ["img", 1, lib_dir.name, sorted(inject.items()), macros]
            for f in sorted(stage.iterdir()):
                parts += [f.name, f.read_bytes()]
            final = root / f"img-{self.cpu.name}-{_sha(parts)}"
            cached = (final / "image.elf").exists()
            if cached:
                _touch(final)
            else:
                self._link(stage, lib_dir, inject, macros)
                _publish(stage, final)
        finally:
            if stage.exists():
                shutil.rmtree(stage, ignore_errors=True)
        if not cached:
            prune_lru(root, CACHE_KEEP, f"img-{self.cpu.name}-")
        return Image(
            final / "image.elf",
            final,
            self.cpu,
            self.rounding,
            self.cmsis_root or "bundled",
            self.cflags,
            lib_dir,
            cached and lib_cached,
            time.perf_counter() - t0,
            inject,
            self.missing_functions,
        )

    def image_macros(self, plan: QuantPlan, selftest: bool) -> list[str]:
        """Flags of network.c and the harness beyond the library's: the self-test, the rounding opt-out."""
        macros = ["-DQVERIFY_SELFTEST"] if selftest else []
        if self.rounding != plan.rounding:
            macros.append("-DQVERIFY_NO_ROUNDING_CHECK")
        return macros

    def _link(self, stage: Path, lib_dir: Path, inject: dict, macros: list[str]) -> None:
        includes = [f"-I{stage}"] + [f"-I{d}" for d in self.include_dirs(lib_dir)]
        hooks = [f"-D{INJECT_MACROS[k]}={int(v)}" for k, v in sorted(inject.items())]
        common = [self.toolchain.gcc, *self._arch_flags(), *self.cflags, *self.defines(), *macros, *includes]
        _compile_all(
            [
                [*common, "-c", str(stage / "network.c"), "-o", str(stage / "network.o")],
                [*common, *hooks, "-c", str(self.fw / FIRMWARE_MAIN), "-o", str(stage / "qv_target_main.o")],
            ],
            stage,
        )
        objects = sorted(str(p) for p in lib_dir.glob("*.o"))
        objects += [str(stage / "network.o"), str(stage / "qv_target_main.o")]
        cmd = [
            self.toolchain.gcc,
            *self._arch_flags(),
            "-nostartfiles",
            "--specs=nano.specs",
            "-T",
            str(self.fw / LINKER_SCRIPT),
            "-Wl,--gc-sections",
            f"-Wl,-Map={stage / 'image.map'}",
            *objects,
            "-o",
            str(stage / "image.elf"),
        ]
        r = subprocess.run(cmd, cwd=stage, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise TargetBuildError(
                f"linking the target image failed (exit {r.returncode}):\n"
                f"{(r.stderr or r.stdout).strip()}\ncommand: {' '.join(cmd)}"
            )


# ---- measuring ---------------------------------------------------------------


@dataclass
class Footprint:
    """Section sizes (bytes) of a linked image, from arm-none-eabi-size -A, the code by origin (link map)
    and the sizes of its data symbols (arm-none-eabi-nm -S; e.g. qv_w3, qv_b3 hold op 3's weights and biases)."""

    sections: dict[str, int]
    code_by_group: dict[str, int]
    code_by_object: dict[str, int]
    symbols: dict[str, int] = field(default_factory=dict)

    def get(self, *names: str) -> int:
        return sum(self.sections.get(n, 0) for n in names)

    @property
    def code(self) -> int:
        return self.get(".vectors", ".text")

    @property
    def rodata(self) -> int:
        return self.get(".rodata", ".ARM.exidx")

    @property
    def weights(self) -> int:
        return self.get(".qv_weights")

    @property
    def flash(self) -> int:
        return self.code + self.rodata + self.weights + self.get(".data")

    @property
    def ram(self) -> int:
        """RAM a deployment of this build needs: .data + .bss (the runner's scratch is in .bss)."""
        return self.get(".data", ".bss")

    @property
    def harness_ram(self) -> int:
        return self.get(".qv_harness", ".stack")


_GROUPS = (
    ("kernels", re.compile(rf"^(arm_.*|{'|'.join(build.QV_FUNCTIONS)})\.o$")),
    ("runner", re.compile(r"^qv_runner\.o$")),
    ("network", re.compile(r"^network\.o$")),
    ("harness", re.compile(r"^(startup|qv_semihost|qv_target_main)\.o$")),
)


def _group(obj: str) -> str:
    base = obj.rsplit("/", 1)[-1]
    if "(" in base or base.endswith(".a"):
        return "libc/libgcc"
    for name, rx in _GROUPS:
        if rx.match(base):
            return name
    return "other"


_MAP_ENTRY = re.compile(
    r"^ (\.text\S*|\.vectors|\.qv_vectors)\s*\n?\s+0x[0-9a-fA-F]+\s+0x([0-9a-fA-F]+)\s+(\S+)", re.MULTILINE
)


def measure(toolchain: Toolchain, image: Image) -> Footprint:
    """arm-none-eabi-size -A of the image, and its code split by object from the link map."""
    r = subprocess.run([toolchain.size, "-A", "-d", str(image.elf)], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise TargetError(f"arm-none-eabi-size failed on {image.elf}: {r.stderr.strip()}")
    sections = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].startswith(".") and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    by_object: dict[str, int] = {}
    mapfile = image.directory / "image.map"
    if mapfile.exists():
        text = mapfile.read_text(errors="replace")
        start = text.find("Linker script and memory map")
        for m in _MAP_ENTRY.finditer(text, max(start, 0)):
            obj = m.group(3)
            by_object[obj] = by_object.get(obj, 0) + int(m.group(2), 16)
    groups: dict[str, int] = {}
    for obj, n in by_object.items():
        groups[_group(obj)] = groups.get(_group(obj), 0) + n
    r = subprocess.run(
        [toolchain.nm, "-S", "--defined-only", str(image.elf)], capture_output=True, text=True, timeout=60
    )
    if r.returncode != 0:
        raise TargetError(f"arm-none-eabi-nm failed on {image.elf}: {r.stderr.strip()}")
    symbols = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4:
            symbols[parts[3]] = int(parts[1], 16)
    return Footprint(sections, groups, by_object, symbols)


def disassemble(toolchain: Toolchain, obj: Path) -> str:
    """arm-none-eabi-objdump -d of an object."""
    r = subprocess.run([toolchain.objdump, "-d", str(obj)], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise TargetError(f"arm-none-eabi-objdump failed on {obj}: {r.stderr.strip()}")
    return r.stdout
