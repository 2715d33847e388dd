"""Processes of the fault suite: Tiled servers, the 0MQ proxy, ``bcdi-online serve``.

Real processes, killed and restarted by the tests (``SIGKILL``: no clean shutdown).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from bluesky.callbacks.zmq import Publisher

from bcdi_online.callbacks import msgpack_serializer
from bcdi_online.tiled_output import corrected_metadata, find_corrected

# -- a Tiled server process that can be killed and restarted ------------------------------


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TiledProcess:
    """``tiled serve catalog`` (SQLite catalog and data under ``directory``) on a fixed port,
    killed (SIGKILL) and started again on the same storage at will."""

    def __init__(self, directory: Path, port: int, api_key: str) -> None:
        self.directory, self.port, self.api_key = directory, port, api_key
        self.uri = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> TiledProcess:
        """Start the server and wait until it answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        catalog = self.directory / "catalog.db"
        command = [
            str(Path(sys.executable).with_name("tiled")),
            "serve",
            "catalog",
            str(catalog),
            *([] if catalog.exists() else ["--init"]),
            "-w",
            str(self.directory / "data"),
            "-r",  # the tests' result files (and detector files) are registered in place
            tempfile.gettempdir(),
            "--api-key",
            self.api_key,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, "tiled serve exited"
            try:
                if httpx.get(f"{self.uri}/api/v1/", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "tiled serve did not answer in 60 s"
            time.sleep(0.2)

    def ensure(self) -> TiledProcess:
        """Start the server unless it runs."""
        if self.process is None or self.process.poll() is not None:
            self.start()
        return self

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, connections refused from now on."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class ProxyProcess:
    """``bluesky-0MQ-proxy`` bound to loopback on fixed ports, stopped and started at will."""

    def __init__(self) -> None:
        self.in_port, self.out_port = free_port(), free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> ProxyProcess:
        """Start the proxy (it binds at once)."""
        command = [
            str(Path(sys.executable).with_name("bluesky-0MQ-proxy")),
            "--in-address",
            f"127.0.0.1:{self.in_port}",
            "--out-address",
            f"127.0.0.1:{self.out_port}",
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        return self

    def kill(self) -> None:
        """SIGKILL the proxy: what is published meanwhile is lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class ServeProcess:
    """``bcdi-online serve`` in a process (output to files, so it never blocks on a pipe)."""

    def __init__(
        self,
        directory: Path,
        zmq: str,
        tiled: str,
        *args: str,
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.out, self.err = directory / "stdout.txt", directory / "stderr.txt"
        self.command = [
            str(Path(sys.executable).with_name("bcdi-online")),
            "--log-level",
            "INFO",
            "serve",
            "--zmq",
            zmq,
            "--tiled",
            tiled,
            "--device",
            "cpu",
            "--fallback-dir",
            str(directory / "fallback"),
            *args,
        ]
        base = {k: v for k, v in os.environ.items() if not k.startswith("TILED_")}
        self.env = {**base, **(env or {})}
        self.preexec_fn = preexec_fn
        self.process: subprocess.Popen | None = None

    def start(self, *, wait: bool = True) -> ServeProcess:
        """Start; with ``wait``, return once it listens (0MQ slow joiner included)."""
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=out,
                stderr=err,
                text=True,
                preexec_fn=self.preexec_fn,  # noqa: PLW1509 - only sets a resource limit
            )
        deadline = time.monotonic() + 120
        while wait and "listening on" not in self.out.read_text():
            assert self.process.poll() is None, self.err.read_text()
            assert time.monotonic() < deadline, "serve did not start in 120 s"
            time.sleep(0.1)
        if wait:
            time.sleep(1.5)  # the SUB socket connects to the proxy
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120) -> tuple[int, str, str]:
        """Send ``sig``, wait; return the exit code, stdout and stderr."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout)
        return code, self.out.read_text(), self.err.read_text()

    def wait(self, timeout: float = 120) -> tuple[int, str, str]:
        """Wait for it to exit by itself; return the exit code, stdout and stderr."""
        assert self.process is not None
        code = self.process.wait(timeout)
        return code, self.out.read_text(), self.err.read_text()


@dataclass
class Record:
    """The corrected run of a raw run in Tiled, and its ``bcdi_online`` metadata."""

    run: Any
    metadata: dict[str, Any]

    def read(self) -> np.ndarray:
        """The corrected frames."""
        return np.asarray(self.run["primary"]["corrected"].read())


def wait_record(client: Any, uid: str, statuses: tuple[str, ...], timeout: float = 120) -> Record:
    """The corrected run of raw run ``uid`` once its status is one of ``statuses``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for status in statuses:
            run = find_corrected(client, uid, status=status)
            if run is not None:
                return Record(run, corrected_metadata(run.metadata))
        time.sleep(0.3)
    raise AssertionError(f"run {uid} not {statuses} in {timeout} s")


def serve(directory: Path, proxy: ProxyProcess, tiled_uri: str, key: str, *args: str, name: str,
          **kwargs: Any) -> ServeProcess:  # fmt: skip
    """A ``serve`` on ``proxy`` and ``tiled_uri``, its key in a file, named ``name``."""
    key_file = directory / f"{name}.key"
    key_file.write_text(key)
    return ServeProcess(
        directory / name,
        f"127.0.0.1:{proxy.out_port}",
        tiled_uri,
        "--api-key-file",
        str(key_file),
        "--name",
        name,
        *args,
        **kwargs,
    )


def publisher(proxy: ProxyProcess) -> Publisher:
    """A RunEngine-side publisher to ``proxy``, msgpack as deploy/ sets it up."""
    return Publisher(f"127.0.0.1:{proxy.in_port}", serializer=msgpack_serializer)


_ARCHIVE_SERVER = """
import sys
import tempfile
from pathlib import Path
from bcdi_online.testing import tiled_server
root = Path(sys.argv[1])
server = tiled_server(root, root / "detector", Path(tempfile.gettempdir()))
print(server.uri, flush=True)
sys.stdin.read()
server.close()
"""


class ArchiveServer:
    """A Tiled server that can give runs back as documents (the demo's), in a process.

    Its own process, because Tiled's in-process apps share one settings object: a second
    server in the test process would change the API key the first one expects.
    """

    def __init__(self, root: Path) -> None:
        (root / "detector").mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-c", _ARCHIVE_SERVER, str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.uri = self.process.stdout.readline().strip()
        assert self.uri.startswith("http"), "the archive server did not start"
        self.api_key = self.uri.rsplit("api_key=", 1)[1]

    def close(self) -> None:
        """Stop the server."""
        self.process.communicate(input="", timeout=60)
