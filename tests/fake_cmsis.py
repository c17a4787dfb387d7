"""Small CMSIS_5-shaped trees for the tests: no Arm tree is available in CI, so these stand in for one.

The tree's NN sources are qverify's own kernels in CMSIS_5's folder layout, with arm_relu_q15 altered
(negatives -> 7, on both code paths) so that a test can tell the tree's kernels from the bundled ones.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from qverify.build import CMSIS_DIR

ALTERED_RELU = ('#include "arm_nnfunctions.h"\n'
                "void arm_relu_q15(q15_t *data, uint16_t size)\n"
                "{\n    uint32_t i;\n    for (i = 0; i < size; i++)\n        if (data[i] < 0)\n"
                "            data[i] = 7;\n}\n")
FOLDERS = {"arm_relu_q15": "ActivationFunctions", "arm_fully_connected_q15": "FullyConnectedFunctions"}


def fake_cmsis_tree(base: Path, omit: str | Iterable[str] | None = None, sources: dict[str, str] | None = None) -> Path:
    """base/CMSIS_5 with NN/Include, DSP/Include and NN/Source/<folder>/arm_*.c.

    omit: leave this function's source (or these functions' sources) out, as in a vendor's trimmed tree;
    sources: {function: C text} replacing a source.
    """
    omit = {omit} if isinstance(omit, str) else set(omit or ())
    root = base / "CMSIS_5"
    nn = root / "CMSIS" / "NN"
    (nn / "Include").mkdir(parents=True)
    (root / "CMSIS" / "DSP" / "Include").mkdir(parents=True)
    for name in ("arm_nnfunctions.h", "arm_nnsupportfunctions.h", "arm_nn_types.h"):
        shutil.copy(CMSIS_DIR / "Include" / name, nn / "Include")
    for name in ("arm_math.h", "arm_math_types.h"):
        shutil.copy(CMSIS_DIR / "Include" / name, root / "CMSIS" / "DSP" / "Include")
    texts = {"arm_relu_q15": ALTERED_RELU, **(sources or {})}
    for src in (CMSIS_DIR / "Source").glob("arm_*.c"):
        if src.stem in omit:
            continue
        dest = nn / "Source" / FOLDERS.get(src.stem, "ConvolutionFunctions") / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(texts.get(src.stem, src.read_text()))
    return root
