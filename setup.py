from setuptools import setup

setup(cffi_modules=["build.py:dsp_truncate", "build.py:dsp_round", "build.py:plain_truncate", "build.py:plain_round",
                     "build.py:fast_truncate", "build.py:fast_round"])
