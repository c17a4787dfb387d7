"""Small CMSIS_5-shaped trees for the tests: no Arm tree is available in CI, so these stand in for one.

The tree's NN sources are qverify's own kernels in CMSIS_5's folder layout, with arm_relu_q15 altered
(negatives -> 7, on both code paths) so that a test can tell the tree's kernels from the bundled ones.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from qverify import build
from qverify.build import CMSIS_DIR

ALTERED_RELU = (
    '#include "arm_nnfunctions.h"\n'
    "void arm_relu_q15(q15_t *data, uint16_t size)\n"
    "{\n    uint32_t i;\n    for (i = 0; i < size; i++)\n        if (data[i] < 0)\n"
    "            data[i] = 7;\n}\n"
)
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
        # under the file name Arm's tree uses (build.TREE_FILES), where it is not <function>.c
        name = build.TREE_FILES.get(src.stem, src.name)
        dest = nn / "Source" / FOLDERS.get(src.stem, "ConvolutionFunctions") / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(texts.get(src.stem, src.read_text()))
    return root


# arm_convolve_HWC_q15_fast_nonsquare as Arm's DSP path behaves, per CMSIS_API.md's "Kernel contracts"
# (written here from that description, on every path so a host build shows it): output pixels are
# gathered two columns at a time into bufferA along x; a pair is computed when x is odd, and only then
# does the im2col pointer go back to the start of bufferA. The inner loop count is a uint16_t of
# (ch_in * k_x * k_y) / 2 pairs.
PAIRING_FAST_NONSQUARE = r"""
#include <string.h>
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

static q15_t fake_finish(q31_t acc, uint16_t out_shift)
{
    acc >>= out_shift;
    return (q15_t)(acc > 32767 ? 32767 : (acc < -32768 ? -32768 : acc));
}

arm_status arm_convolve_HWC_q15_fast_nonsquare(const q15_t *Im_in, const uint16_t dim_im_in_x,
    const uint16_t dim_im_in_y, const uint16_t ch_im_in, const q15_t *wt, const uint16_t ch_im_out,
    const uint16_t dim_kernel_x, const uint16_t dim_kernel_y, const uint16_t padding_x, const uint16_t padding_y,
    const uint16_t stride_x, const uint16_t stride_y, const q15_t *bias, const uint16_t bias_shift,
    const uint16_t out_shift, q15_t *Im_out, const uint16_t dim_im_out_x, const uint16_t dim_im_out_y,
    q15_t *bufferA, q7_t *bufferB)
{
    const int col = ch_im_in * dim_kernel_x * dim_kernel_y;
    q15_t *ptr = bufferA;
    q15_t *out = Im_out;
    int ox, oy, kx, ky, o;
    (void)bufferB;
    if ((ch_im_in % 2) != 0 || (ch_im_out % 2) != 0)
        return ARM_MATH_SIZE_MISMATCH;
    for (oy = 0; oy < dim_im_out_y; oy++)
        for (ox = 0; ox < dim_im_out_x; ox++)
        {
            for (ky = 0; ky < dim_kernel_y; ky++)
                for (kx = 0; kx < dim_kernel_x; kx++)
                {
                    const int iy = oy * stride_y - padding_y + ky, ix = ox * stride_x - padding_x + kx;
                    if (iy < 0 || iy >= dim_im_in_y || ix < 0 || ix >= dim_im_in_x)
                        memset(ptr, 0, sizeof(q15_t) * ch_im_in);
                    else
                        memcpy(ptr, Im_in + (iy * dim_im_in_x + ix) * ch_im_in, sizeof(q15_t) * ch_im_in);
                    ptr += ch_im_in;
                }
            if (ox & 1)
            {
                for (o = 0; o < ch_im_out; o++)
                {
                    q31_t a0 = ((q31_t)bias[o] << bias_shift) + NN_ROUND(out_shift), a1 = a0;
                    uint16_t pairs = (uint16_t)(col >> 1);
                    int i = 0;
                    for (; pairs > 0; pairs--, i += 2)
                    {
                        a0 += wt[o * col + i] * bufferA[i] + wt[o * col + i + 1] * bufferA[i + 1];
                        a1 += wt[o * col + i] * bufferA[col + i] + wt[o * col + i + 1] * bufferA[col + i + 1];
                    }
                    if (col & 1)
                    {
                        a0 += wt[o * col + col - 1] * bufferA[col - 1];
                        a1 += wt[o * col + col - 1] * bufferA[2 * col - 1];
                    }
                    out[o] = fake_finish(a0, out_shift);
                    out[ch_im_out + o] = fake_finish(a1, out_shift);
                }
                out += 2 * ch_im_out;
                ptr = bufferA;
            }
        }
    return ARM_MATH_SUCCESS;
}
"""


def over_reading_fully_connected() -> str:
    """qverify's arm_fully_connected_q15 with one extra read one element past the input vector: the result is
    unchanged (the guard words, which catch writes, cannot see it); AddressSanitizer can."""
    text = (CMSIS_DIR / "Source" / "arm_fully_connected_q15.c").read_text()
    marker = "arm_status arm_fully_connected_q15("
    body = text.index("{", text.index(marker))
    return text[: body + 1] + "\n    { volatile q15_t past = pV[dim_vec]; (void)past; }\n" + text[body + 1 :]
