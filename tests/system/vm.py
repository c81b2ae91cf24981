"""A Debian bookworm x86_64 VM under qemu, driven over ssh: real systemd, real power cuts.

``Vm(image, work).boot()`` starts qemu on a qcow2 overlay of the cached base image
(``vm_image.base_image()``), with the kernel and initrd from the image and:

- KVM when it works here (a CPU model KVM accepts, see ``accelerator()``), TCG otherwise;
- user networking with ``restrict=on``: the guest reaches nothing but the forwards, ssh on a
  127.0.0.1 port and ``guestfwd`` addresses that lead to host services on 127.0.0.1;
- serial ports written to host files: ttyS0 the console, ttyS1.. what a test wants recorded
  outside the guest as it happens (a SIGKILL of qemu cannot take back what reached them).

Every wait is on a condition with a deadline (``wait_for``); nothing sleeps a fixed time.
``power_cut()`` is SIGKILL to qemu: no sync, no shutdown, the guest's page cache is lost.
"""

# ruff: noqa: S603, S607 - fixed commands (qemu, ssh, mmdebstrap) with our own arguments

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tests.system.vm_image import BaseImage

T = TypeVar("T")
ACCEL_ENV = "TICKET_SCANNER_VM_ACCEL"  # "tcg" forces emulation; "kvm" refuses to fall back
# KVM CPU models, tried in order. `host` and `max` pass the host's MSRs through, which some
# nested hosts refuse ("failed to set MSR 0x10a"). Some also hide SSE3..SSE4.2 from KVM's
# CPUID although the CPU runs them; numpy refuses to import without SSE3 in CPUID, so those
# flags are forced on (they are plain user-mode instructions, nothing KVM must emulate).
KVM_CPUS = (
    "host",
    "max",
    "qemu64,+pni,+ssse3,+sse4.1,+sse4.2,+popcnt,+cx16,x-force-features=on",
)
TCG_CPU = "max"
MEMORY_MB = 2048
SHARE = "/mnt/host"  # the guest's view of Vm.share


def log(message: str) -> None:
    print(f"[vm] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Print how long the block took (each phase's wall time is in the test output)."""
    started = time.monotonic()
    log(f"{name} ...")
    try:
        yield
    finally:
        log(f"{name}: {time.monotonic() - started:.1f} s")


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    timeout_s: float,
    *,
    interval_s: float = 0.5,
    alive: Callable[[], None] | None = None,
) -> T:
    """``probe()`` until it returns something other than None/False; its last answer.

    ``alive()`` is called between tries and raises if waiting is pointless (qemu died).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        answer = probe()
        if answer is not None and answer is not False:
            return answer
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout_s:.0f} s waiting for {what}")
        if alive is not None:
            alive()
        time.sleep(interval_s)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Accel:
    name: str  # "kvm" or "tcg"
    args: tuple[str, ...]

    @property
    def slow(self) -> bool:
        return self.name == "tcg"


_ACCEL: Accel | None = None


def accelerator(kernel: Path) -> Accel:
    """KVM with the first CPU model that boots ``kernel`` here, else TCG; probed once."""
    global _ACCEL  # noqa: PLW0603 - one probe per test session
    if _ACCEL is not None:
        return _ACCEL
    wanted = os.environ.get(ACCEL_ENV, "")
    if wanted != "tcg" and os.access("/dev/kvm", os.R_OK | os.W_OK):
        for cpu in KVM_CPUS:
            if _kvm_boots(cpu, kernel):
                _ACCEL = Accel("kvm", ("-accel", "kvm", "-cpu", cpu))
                log(f"accelerator: KVM, -cpu {cpu}")
                return _ACCEL
            log(f"KVM with -cpu {cpu} does not boot a kernel here")
    if wanted == "kvm":
        raise RuntimeError(f"{ACCEL_ENV}=kvm, but no KVM CPU model boots a kernel here")
    _ACCEL = Accel("tcg", ("-accel", "tcg,thread=multi", "-cpu", TCG_CPU))
    log("accelerator: TCG (no working KVM): everything is several times slower")
    return _ACCEL


def _kvm_boots(cpu: str, kernel: Path, timeout_s: float = 8) -> bool:
    """Does the kernel print its banner under KVM with this CPU model?

    Creating the vCPU is not enough: on some nested hosts KVM starts, and the guest then hangs
    when the kernel leaves real mode ("Probing EDD" is the last line). The kernel's first
    line, "Linux version", comes within a second when KVM works.
    """
    with tempfile.TemporaryDirectory(prefix="kvm-probe-") as folder:
        console = Path(folder) / "console"
        probe = subprocess.Popen(
            ["qemu-system-x86_64", "-accel", "kvm", "-cpu", cpu, "-machine", "q35",
             "-m", "256", "-nodefaults", "-display", "none", "-no-reboot",
             "-serial", f"file:{console}", "-kernel", str(kernel),
             "-append", "console=ttyS0 earlyprintk=ttyS0 panic=-1 root=/dev/null"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and probe.poll() is None:
                if console.exists() and b"Linux version" in console.read_bytes():
                    return True
                time.sleep(0.2)
            return False
        finally:
            probe.kill()
            probe.wait()


@dataclass
class Forward:
    """Guest ``address:port`` (TCP) leads to host ``127.0.0.1:host_port``."""

    address: str
    port: int
    host_port: int


RELAY = r'''#!/usr/bin/python3
"""One guestfwd connection (stdin/stdout) relayed to 127.0.0.1:PORT."""
import os, selectors, socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sel = selectors.DefaultSelector()
sel.register(0, selectors.EVENT_READ)
sel.register(sock, selectors.EVENT_READ)
open_in = True
while True:
    for key, _ in sel.select():
        if key.fileobj == 0:
            data = os.read(0, 65536)
            if not data:
                sel.unregister(0)
                sock.shutdown(socket.SHUT_WR)
                open_in = False
            else:
                sock.sendall(data)
        else:
            data = sock.recv(65536)
            if not data:
                sys.exit(0)
            view = memoryview(data)
            while view:
                view = view[os.write(1, view):]
'''


@dataclass
class Vm:
    image: BaseImage
    work: Path
    name: str = "vm"
    backing: Path | None = None  # a qcow2 to build this VM's overlay on (default: the image)
    forwards: list[Forward] = field(default_factory=list)
    serial_names: tuple[str, ...] = ()  # ttyS1, ttyS2, ... -> work/<name>-<serial name>.log
    process: subprocess.Popen[bytes] | None = None
    ssh_port: int = 0

    def __post_init__(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.disk = self.work / f"{self.name}.qcow2"
        self.console = self.work / f"{self.name}-console.log"
        self.boots = 0
        # Big files go through a 9p share (virtio), not ssh: ssh's crypto under TCG moves
        # a 30 MB bundle in minutes. In the guest it is mounted read-only at SHARE.
        self.share = self.work / "share"
        self.share.mkdir(exist_ok=True)
        self._puts = 0
        self._master: subprocess.Popen[bytes] | None = None

    def serial_file(self, serial_name: str) -> Path:
        return self.work / f"{self.name}-{serial_name}.log"

    # -- life cycle --------------------------------------------------------------------------

    def create_disk(self) -> None:
        backing, fmt = (self.backing, "qcow2") if self.backing else (self.image.disk, "raw")
        self.disk.unlink(missing_ok=True)
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(backing), "-F", fmt,
             str(self.disk)],
            check=True,
        )  # fmt: skip

    def boot(self, timeout_s: float | None = None) -> None:
        """Start qemu (on a new overlay the first time) and wait until ssh answers."""
        if not self.disk.exists():
            self.create_disk()
        accel = accelerator(self.image.kernel)
        timeout_s = timeout_s or (900 if accel.slow else 240)
        with phase(f"{self.name}: boot {self.boots + 1} ({accel.name})"):
            self._start(accel)
            wait_for("ssh to answer", self._ssh_answers, timeout_s, interval_s=1,
                     alive=self.check_alive)  # fmt: skip
        self.boots += 1
        self._master = subprocess.Popen(
            [*self._ssh_base(10, "yes"), "-N"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        socket_path = self.work / f"ssh-{self.ssh_port}"
        wait_for("the ssh control socket", socket_path.exists, 60, interval_s=0.2)
        options = "trans=virtio,version=9p2000.L,msize=512000,ro"
        self.ssh(f"mkdir -p {SHARE} && mountpoint -q {SHARE} || "
                 f"mount -t 9p -o {options} host {SHARE}")  # fmt: skip

    def _start(self, accel: Accel) -> None:
        self.ssh_port = free_port()
        netdev = f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22"
        relay = self.work / "guestfwd-relay.py"
        relay.write_text(RELAY, encoding="utf-8")
        relay.chmod(0o755)
        for fwd in self.forwards:
            netdev += f",guestfwd=tcp:{fwd.address}:{fwd.port}-cmd:{relay} {fwd.host_port}"
        serials = ["-serial", f"file:{self.console}"]
        for serial_name in self.serial_names:
            serials += ["-serial", f"file:{self.serial_file(serial_name)}"]
        # A file chardev truncates: keep what earlier boots recorded.
        for path in [self.console, *(self.serial_file(n) for n in self.serial_names)]:
            if path.exists() and path.stat().st_size:
                path.rename(path.with_suffix(f".boot{self.boots}.log"))
        command = [
            "qemu-system-x86_64",
            *accel.args,
            "-machine", "q35",
            "-smp", "2",
            "-m", str(MEMORY_MB),
            "-nodefaults",
            "-display", "none",
            "-no-reboot",
            "-rtc", "base=utc,clock=host",
            "-kernel", str(self.image.kernel),
            "-initrd", str(self.image.initrd),
            "-append", "root=/dev/vda rw console=ttyS0 panic=-1 quiet systemd.show_status=0",
            # cache=writeback (the default) honours the guest's flushes: what the guest
            # fsynced is on the host before the guest goes on; a SIGKILL loses the rest.
            "-drive", f"file={self.disk},format=qcow2,if=virtio,cache=writeback,discard=unmap",
            "-netdev", netdev,
            "-device", "virtio-net-pci,netdev=n0",
            "-device", "virtio-rng-pci",
            "-virtfs", f"local,path={self.share},mount_tag=host,security_model=none,readonly=on",
            *serials,
        ]  # fmt: skip
        stderr = (self.work / f"{self.name}-qemu.log").open("ab")
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=stderr,
                                        stdout=stderr)  # fmt: skip
        stderr.close()

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise RuntimeError(
                f"qemu exited ({code}); console tail:\n{self.console_tail()}\n"
                f"qemu: {(self.work / f'{self.name}-qemu.log').read_text(errors='replace')[-2000:]}"
            )

    def console_tail(self, lines: int = 40) -> str:
        try:
            text = self.console.read_text(errors="replace")
        except FileNotFoundError:
            return "(no console output)"
        return "\n".join(text.splitlines()[-lines:])

    def power_cut(self) -> None:
        """SIGKILL qemu: no sync, no shutdown; the guest's unwritten pages are gone."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        log(f"{self.name}: power cut (qemu killed)")
        self._end_ssh_master()

    def _end_ssh_master(self) -> None:
        """The shared ssh connection of this boot (its peer is gone, or going)."""
        if self._master is not None:
            self._master.kill()
            self._master.wait(timeout=30)
            self._master = None

    def shutdown(self) -> None:
        """A clean poweroff, or SIGKILL when it does not come."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.ssh("systemctl poweroff", check=False, timeout=20)
        try:
            self.process.wait(timeout=300)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self._end_ssh_master()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._end_ssh_master()

    # -- ssh ---------------------------------------------------------------------------------

    def _ssh_base(self, connect_timeout: int = 10, control: str = "no") -> list[str]:
        # One connection per boot, shared by every command (a ControlMaster started after
        # boot; without it, commands connect on their own): a new ssh handshake costs seconds
        # under TCG. The socket's name has the port, new every boot.
        path = "none" if control == "none" else f"{self.work}/ssh-{self.ssh_port}"
        return [
            "ssh", "-q", "-p", str(self.ssh_port), "-i", str(self.image.ssh_key),
            "-o", f"ControlMaster={'no' if control == 'none' else control}",
            "-o", f"ControlPath={path}",
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR",
            "-o", f"ConnectTimeout={connect_timeout}",
            "-o", "ServerAliveInterval=10",
            "root@127.0.0.1",
        ]  # fmt: skip

    def _ssh_answers(self) -> bool:
        try:
            done = subprocess.run(
                [*self._ssh_base(5, "none"), "true"], capture_output=True, timeout=30, check=False
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def ssh(
        self,
        command: str,
        *,
        check: bool = True,
        timeout: float = 600,
        input_bytes: bytes | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command in the guest as root; its output as text."""
        done = subprocess.run(
            [*self._ssh_base(), command],
            input=input_bytes,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        result = subprocess.CompletedProcess(
            done.args,
            done.returncode,
            done.stdout.decode(errors="replace"),
            done.stderr.decode(errors="replace"),
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"in the VM: {command}\nexit {result.returncode}\n"
                f"stdout: {result.stdout[-4000:]}\nstderr: {result.stderr[-4000:]}"
            )
        return result

    def out(self, command: str, **kwargs: float) -> str:
        """stdout of a command that must succeed, stripped."""
        return self.ssh(command, **kwargs).stdout.strip()  # type: ignore[arg-type]

    def put(self, local: Path, remote: str) -> None:
        """Copy a file or a folder's contents into the guest (through the share, owned by root)."""
        self._puts += 1
        staged = self.share / f"put{self._puts}"
        if local.is_dir():
            shutil.copytree(local, staged, symlinks=True)
            source = f"{SHARE}/{staged.name}/."
        else:
            shutil.copy2(local, staged)
            source = f"{SHARE}/{staged.name}"
        quoted = shlex.quote(remote)
        if local.is_dir():
            self.ssh(f"mkdir -p {quoted} && cp -a {source} {quoted} && chown -R 0:0 {quoted}")
        else:
            self.ssh(f"mkdir -p $(dirname {quoted}) && cp {source} {quoted} && chown 0:0 {quoted}")
        shutil.rmtree(staged) if staged.is_dir() else staged.unlink()

    def write(self, remote: str, text: str, mode: str = "0644") -> None:
        quoted = shlex.quote(remote)
        self.ssh(f"mkdir -p $(dirname {quoted}) && cat > {quoted} && chmod {mode} {quoted}",
                 input_bytes=text.encode())  # fmt: skip

    def unit(self, name: str, *props: str) -> dict[str, str]:
        """``systemctl show -p ...`` as a dict."""
        text = self.out(f"systemctl show {' '.join('-p ' + p for p in props)} {name}")
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
