"""qverify.allocator: glibc keeps large freed blocks for reuse, unless the user set malloc's tunables."""

import os
import platform
import subprocess
import sys

import pytest

from qverify import allocator

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def _child(env_extra: dict[str, str]) -> str:
    """keep_large_blocks() in a fresh interpreter (mallopt changes the process it runs in)."""
    env = {k: v for k, v in os.environ.items() if k not in allocator._USER_SET} | env_extra
    code = "from qverify.allocator import keep_large_blocks; print(keep_large_blocks())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_glibc_keeps_large_blocks():
    assert _child({}).strip() == "True"


@pytest.mark.parametrize("name", allocator._USER_SET)
def test_a_user_setting_is_left_alone(name):
    assert _child({name: "65536"}).strip() == "False"
