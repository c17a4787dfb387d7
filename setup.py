# setuptools refuses cffi_modules in pyproject.toml, so this file carries only that; all other metadata is there.
from setuptools import setup

BUILD = "src/qverify/build.py"
setup(
    cffi_modules=[
        f"{BUILD}:{variant}"
        for variant in (
            "dsp_truncate",
            "dsp_round",
            "plain_truncate",
            "plain_round",
            "fast_truncate",
            "fast_round",
            "stats",  # qverify._stats, the statistics of eval (csrc/qv_stats.c)
        )
    ]
)
