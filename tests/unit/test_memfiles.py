"""Memory files in memory.environment: memfd/tmpfs pages count once, at their allocated size."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.workloads.hostmem import environment_memory, parse_smaps_rollup, sum_rollups
from bench.workloads.memfiles import (
    MemoryFile,
    Mounts,
    account,
    fdinfo_mount,
    kernel_memory_devices,
    mapped_file,
    open_files,
    parse_mountinfo,
    parse_smaps,
    process_mounts,
    read_mappings,
)

KiB, MiB = 1024, 1024 * 1024
SHM = os.makedev(0, 1)  # the kernel's internal shmem mount, as smaps prints it: "00:01"

#: A gVisor (ptrace) stub's smaps, abridged: the application's pages are pieces of the
#: Sentry's memory file, mapped into the stub as the application touches them.
STUB_SMAPS = """\
00400000-00401000 r--s 00003000 00:01 124737    /memfd:runsc-memory (deleted)
Size:                  4 kB
Rss:                   4 kB
Pss:                   2 kB
7f0000000000-7f0000200000 rw-s 04000000 00:01 124737    /memfd:runsc-memory (deleted)
Size:               2048 kB
Rss:                2048 kB
Pss:                2048 kB
Pss_Shmem:          2048 kB
VmFlags: rd wr sh mr mw me ms sd
7ffd8a1d4000-7ffd8a1f5000 rw-p 00000000 00:00 0    [stack]
Size:                132 kB
Rss:                   8 kB
Pss:                   8 kB
"""
#: The Sentry's own smaps: its binary (a file on disk), a window of the memory file, and a
#: shared anonymous mapping (shmem as well, its fd long closed: only map_files reaches it).
SENTRY_SMAPS = """\
55d0c8a4b000-55d0c9a4b000 r-xp 00000000 fe:01 393233    /usr/bin/runsc
Size:              16384 kB
Rss:               11000 kB
Pss:                5500 kB
7f1000000000-7f1000020000 rw-s 00000000 00:01 124737    /memfd:runsc-memory (deleted)
Size:                128 kB
Rss:                 122 kB
Pss:                 122 kB
7f2000000000-7f2000100000 rw-s 00000000 00:01 4242    /dev/zero (deleted)
Size:               1024 kB
Rss:                 100 kB
Pss:                 100 kB
"""
#: A container's mountinfo (major:minor in decimal here, unlike smaps' hex).
MOUNTINFO = """\
1021 980 0:123 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
1022 1021 0:124 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1023 1021 0:125 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
1030 1023 0:126 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k
1031 1021 0:40 / /dev/hugepages rw,relatime shared:9 - hugetlbfs hugetlbfs rw,pagesize=2M
1032 1021 0:41 / /sys/fs/cgroup ro - cgroup2 cgroup2 rw
"""


def test_parse_smaps_keeps_the_file_of_each_mapping() -> None:
    stub = parse_smaps(STUB_SMAPS)
    assert [(m.dev, m.inode) for m in stub] == [(SHM, 124737), (SHM, 124737), (0, 0)]
    assert stub[1].name == "/memfd:runsc-memory (deleted)"
    assert (stub[1].start, stub[1].size, stub[1].perms) == (0x7F0000000000, 2 * MiB, "rw-s")
    assert (stub[1].rss, stub[1].pss) == (2048 * KiB, 2048 * KiB)
    assert stub[2].name == "[stack]"
    runsc = parse_smaps(SENTRY_SMAPS)[0]
    assert runsc.dev == os.makedev(0xFE, 0x01)  # smaps prints the device in hex


def test_mountinfo_splits_memory_devices_from_other_mounts() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert mounts.devices == {os.makedev(0, 125), os.makedev(0, 126), os.makedev(0, 40)}
    assert mounts.elsewhere == {1021, 1022, 1032}  # overlay, proc, cgroup2: never stat'ed
    assert parse_mountinfo("garbage\n\n") == Mounts()


def test_fdinfo_names_the_mount() -> None:
    assert fdinfo_mount("pos:\t0\nflags:\t0100002\nmnt_id:\t1021\nino:\t652\n") == 1021
    assert fdinfo_mount("pos:\t0\nflags:\t02\n") is None  # an old kernel


def _gvisor_files() -> list[MemoryFile]:
    """What /proc/PID/fd shows: the Sentry (7) and the stub (9) hold the memory file open."""
    return [
        MemoryFile(SHM, 124737, "/memfd:runsc-memory (deleted)", 64 * MiB, (7,)),
        MemoryFile(SHM, 124737, "/memfd:runsc-memory (deleted)", 64 * MiB, (9,)),
        MemoryFile(SHM, 55, "/memfd:flipcall_packet_windows (deleted)", 8 * KiB, (5,)),
    ]


def test_account_counts_each_file_once_and_takes_out_its_mapped_pss() -> None:
    mappings = {7: parse_smaps(SENTRY_SMAPS), 9: parse_smaps(STUB_SMAPS)}
    files = account(_gvisor_files(), mappings, {SHM})
    assert files.allocated == 64 * MiB + 8 * KiB  # runsc-memory once, though two pids hold it
    assert files.mapped_pss == (122 + 2 + 2048) * KiB  # the runsc-memory windows only
    assert [f.holders for f in files.files] == [(7, 9), (5,)]
    # The shared anonymous mapping is shmem but was not sized: its PSS stays, it is named.
    assert files.unsized == ("/dev/zero (deleted)",)


def test_environment_sum_replaces_mapped_pss_by_the_files() -> None:
    sentry = parse_smaps_rollup("Rss: 24268 kB\nPss: 16473 kB\nPss_Shmem: 142 kB\n")
    stub = parse_smaps_rollup("Rss: 2888 kB\nPss: 2631 kB\nPss_Shmem: 2170 kB\n")
    mappings = {7: parse_smaps(SENTRY_SMAPS), 9: parse_smaps(STUB_SMAPS)}
    files = account(_gvisor_files()[:2], mappings, {SHM})
    total = sum_rollups({7: sentry, 9: stub}, files)
    assert total.process_pss == (16473 + 2631) * KiB
    assert total.pss == (16473 + 2631 - 122 - 2 - 2048) * KiB + 64 * MiB
    facts = total.facts()
    assert facts["environment_memfile_bytes"] == str(64 * MiB)
    assert facts["environment_memfile_mapped_pss_bytes"] == str(2172 * KiB)
    assert facts["environment_process_pss_bytes"] == str(19104 * KiB)
    assert facts["environment_memfiles"] == (
        f"/memfd:runsc-memory (deleted) dev=0:1 ino=124737 bytes={64 * MiB} pids=7,9"
    )
    assert facts["environment_memfiles_unsized"] == "/dev/zero (deleted)"
    # Plain processes: nothing changes, and the facts say so.
    plain = sum_rollups({9: stub})
    assert plain.pss == plain.process_pss == 2631 * KiB
    assert plain.facts()["environment_memfiles"] == "none"
    assert "environment_memfiles_unsized" not in plain.facts()


QEMU_MEMFD_SMAPS = """\
55d0c8a4b000-55d0c8c4b000 r--p 00000000 08:01 1234   /usr/bin/qemu-system-x86_64
Size:               2048 kB
Rss:                2048 kB
Pss:                1024 kB
7f9a83e00000-7f9ac3e00000 rw-s 00000000 00:01 9001   /memfd:pc.ram (deleted)
Size:            1048576 kB
Rss:              307200 kB
Pss:              153600 kB
"""


def test_qemu_guest_ram_in_a_memfd_counts_what_the_guest_touched_once() -> None:
    # QEMU configured with memory-backend-memfd: guest RAM is a memfd QEMU holds and maps.
    # 300 MiB touched; a vhost-user helper outside the environment maps it too (PSS halved).
    ram = MemoryFile(SHM, 9001, "/memfd:pc.ram (deleted)", 300 * MiB, (11,))
    qemu = {11: parse_smaps(QEMU_MEMFD_SMAPS)}
    files = account([ram], qemu, {SHM})
    rollup = parse_smaps_rollup("Rss: 309248 kB\nPss: 154624 kB\n")
    total = sum_rollups({11: rollup}, files)
    assert total.pss == 1024 * KiB + 300 * MiB  # the guest's pages whole, not half
    # Alone on its pages, QEMU's figure is what PSS gave: replacing is exact, not additive.
    alone = parse_smaps(QEMU_MEMFD_SMAPS.replace("153600 kB", "307200 kB"))
    solo = sum_rollups(
        {11: parse_smaps_rollup("Pss: 308224 kB\n")}, account([ram], {11: alone}, {SHM})
    )
    assert solo.pss == solo.process_pss


# --- the edge, on a fake /proc tree and on a real child process --------------------------------


def test_reading_a_fake_proc_tree(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_bytes(b"x" * 10000)
    dev = data.stat().st_dev
    proc = tmp_path / "proc"
    (proc / "5" / "fd").mkdir(parents=True)
    (proc / "5" / "fdinfo").mkdir()
    for fd, target, mount in ((3, data, 0), (4, tmp_path, 0), (6, tmp_path / "gone", 0)):
        (proc / "5" / "fd" / str(fd)).symlink_to(target)  # 4: a directory, 6: closed meanwhile
        (proc / "5" / "fdinfo" / str(fd)).write_text(f"pos:\t0\nmnt_id:\t{mount}\n")
    (proc / "5" / "mountinfo").write_text(MOUNTINFO)
    (proc / "5" / "map_files").mkdir()
    (proc / "5" / "map_files" / "7f0000000000-7f0000200000").symlink_to(data)
    (proc / "5" / "smaps").write_text(STUB_SMAPS)
    (held,) = open_files(5, {dev}, proc=proc)
    assert (held.dev, held.inode, held.holders) == (dev, data.stat().st_ino, (5,))
    assert held.allocated == data.stat().st_blocks * 512
    assert held.name == str(data)
    assert list(open_files(5, {dev + 1}, proc=proc)) == []  # not on a memory device
    # An fd on a mount known to be a disk (NFS, FUSE...) is not even stat'ed.
    (proc / "5" / "fdinfo" / "3").write_text("pos:\t0\nmnt_id:\t1021\n")
    assert list(open_files(5, {dev}, {1021}, proc)) == []
    assert process_mounts(5, proc) == parse_mountinfo(MOUNTINFO)
    mappings = read_mappings(5, {SHM}, proc)
    assert [m.size for m in mappings] == [4096, 2 * MiB]  # the stack is not a memory file
    sized = mapped_file(5, mappings[1], proc)
    assert sized is not None
    assert sized.allocated == held.allocated
    assert mapped_file(5, mappings[0], proc) is None
    assert list(open_files(99, {dev}, proc=proc)) == []  # a gone process has nothing
    assert read_mappings(99, {SHM}, proc) == []
    assert process_mounts(99, proc) == Mounts()


CHILD = """
import mmap, os, sys
held = os.memfd_create("isobench-test-held")
os.write(held, b"x" * (8 << 20))                  # 8 MiB in a memfd it holds open
window = mmap.mmap(held, 2 << 20)                 # of which 2 MiB mapped and touched
window[:] = b"y" * (2 << 20)
closed = os.memfd_create("isobench-test-closed")
os.ftruncate(closed, 3 << 20)
mapped = mmap.mmap(closed, 3 << 20)               # 3 MiB mapped, its fd closed
mapped[:] = b"z" * (3 << 20)
os.close(closed)
print("ready", flush=True)
sys.stdin.read()
"""


def test_a_real_process_with_memfds_counts_them_once() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
            measured = environment_memory([child.pid])
        finally:
            child.communicate("")
    names = {f.name.split(" ")[0]: f for f in measured.memfiles.files}
    assert names["/memfd:isobench-test-held"].allocated == 8 * MiB
    if os.geteuid() == 0:  # map_files needs root
        assert names["/memfd:isobench-test-closed"].allocated == 3 * MiB
        assert measured.memfiles.mapped_pss == pytest.approx(5 * MiB, abs=64 * KiB)
    assert measured.pss - measured.process_pss == pytest.approx(
        measured.memfiles.allocated - measured.memfiles.mapped_pss
    )
    assert measured.pss >= 11 * MiB


def test_kernel_memory_devices_include_the_memfd_device() -> None:
    fd = os.memfd_create("isobench-test")
    try:
        assert os.fstat(fd).st_dev in kernel_memory_devices()
    finally:
        os.close(fd)
