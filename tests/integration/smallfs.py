# SPDX-License-Identifier: MIT
"""A disk that fills up on the test's command: a private tmpfs for a queue's state_dir,
and a ballast file that leaves exactly as much room as a test wants. Inputs' tests of
`when_full` use it to make the queue full without writing gigabytes."""

import os
import subprocess
import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def small_fs():
    """A 24 MiB tmpfs, unmounted at teardown. Needs root (the suite's CI runs as
    root); nothing else here does."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    d = tempfile.mkdtemp(prefix="cgfs-", dir="/tmp")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", d],
                       capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(d)
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    try:
        yield Path(d)
    finally:
        subprocess.run(["umount", "-l", d], check=False)
        os.rmdir(d)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def leave_free(fs, nbytes):
    """Fill fs with a ballast file until nbytes are free; returns its path."""
    ballast = fs / "ballast"
    size = free_bytes(fs) - nbytes
    assert size > 0
    with open(ballast, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, size)
    return ballast


# Small segments, so that a few MiB of room hold only a few of them.
FULL_QUEUE = dict(segment_size="1M", commit_bytes="64K", commit_interval="20ms",
                  max_size="1G", min_free=0, block_timeout="200ms")
