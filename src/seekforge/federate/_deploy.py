"""Flower's deployment runtime on this machine: a SuperLink and one SuperNode per site as separate
processes on 127.0.0.1, over TLS with a certificate authority made for the run, the run submitted with
``flwr run`` as a Flower app seekforge writes, each site's
rows in its own file that only its SuperNode reads; every process is stopped by its PID (its process
group: the SuperLink and SuperNodes start Flower's own runtime processes) when the run ends or fails.

The same SuperNode joins a remote SuperLink from a site's own machine (``seekforge federate site``).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from seekforge.core.deps import require
from seekforge.core.errors import DataError
from seekforge.federate._site import server_recipe, write_sites
from seekforge.recipe import Recipe

#: the ServerApp and ClientApps the app folder names (seekforge.federate._deployed)
_MODULE = "seekforge.federate._deployed"
#: written by the server when every round is done, or when it failed (with what failed)
FINISHED, FAILED = "finished.json", "failed.json"
#: how long the SuperLink may take to listen, and a round at most (a site that died, say)
START_S = float(os.environ.get("SEEKFORGE_FEDERATE_START_S", "120"))
ROUND_S = float(os.environ.get("SEEKFORGE_FEDERATE_ROUND_S", "3600"))


def flower_bin(name: str) -> str:
    """A Flower command beside this Python (the environment seekforge[federated] is installed in)."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def flower_env(home: Path) -> dict[str, str]:
    """The environment of Flower's processes: its commands on PATH (a SuperLink starts ``flower-superexec``
    by name) and its home (its config and state) under the run's folder."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "FLWR_HOME": str(home)}  # fmt: skip


def deploy(recipe: Recipe, sites: dict[str, pd.DataFrame], output: Path,
           on_round: Callable[[dict[str, Any]], None]) -> None:  # fmt: skip
    """Run the federation on a local SuperLink and one SuperNode per site; return when every round is done.

    Raises:
        DataError: The SuperLink did not start, a process died, or a round took longer than ``ROUND_S``.
    """
    fed = recipe.federated
    assert fed is not None
    output = output.resolve()  # (Flower's config takes absolute paths; its processes may start elsewhere)
    home, logs = output / "flwr", output / "logs"
    for folder in (home, logs):
        folder.mkdir(parents=True, exist_ok=True)
    for marker in (FINISHED, FAILED):
        (output / marker).unlink(missing_ok=True)
    port = free_port()
    ca, certificate, key = certificates(home / "tls")  # (local, but encrypted as a real federation is)
    (home / "config.toml").write_text(f'[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = '
                                      f'"127.0.0.1:{port}"\nroot-certificates = {json.dumps(str(ca))}\n',
                                      encoding="utf-8")  # fmt: skip
    app = write_app(output / "app", server_recipe(recipe), output=output, sites=len(sites),
                    private=fed.privacy is not None)  # fmt: skip
    env = flower_env(home)
    with processes() as started:
        started.append(_start([flower_bin("flower-superlink"), "--ssl-ca-certfile", str(ca), "--ssl-certfile",
                               str(certificate), "--ssl-keyfile", str(key), "--host", "127.0.0.1", "--port", str(port),
                               "--database", str(home / "state.db"), "--disable-runtime-dependency-installation"],
                              logs / "superlink.log", env))  # fmt: skip
        _wait_listening(port, started[0], logs / "superlink.log")
        for number, (name, data, work) in enumerate(write_sites(sites, output / "sites")):  # only its node reads it
            started.append(_start(supernode_command(f"127.0.0.1:{port}", name, data, port=free_port(), work=work, ca=ca),
                                  logs / f"supernode-{number}.log", env))  # fmt: skip
        submitted = subprocess.run([flower_bin("flwr"), "run", str(app), "local", "--format", "json"], env=env,
                                   capture_output=True, text=True, timeout=START_S, check=False)  # fmt: skip
        try:  # (flwr run exits 0 and says success false when it could not submit)
            accepted = json.loads(submitted.stdout).get("success") is True
        except json.JSONDecodeError:
            accepted = False
        if submitted.returncode != 0 or not accepted:
            raise DataError(f"flwr run could not submit the federation: {_tail(submitted.stdout + submitted.stderr)}")
        _follow(output, started, logs, fed.rounds, on_round)


def supernode_command(superlink: str, site: str, data: Path, *, port: int, work: Path, ca: Path | None,
                      retries: int | None = None, wait_s: float | None = None) -> list[str]:  # fmt: skip
    """The SuperNode of one site: its name and its own rows in its node config; TLS checked against the
    certificate authority ``ca`` (None: unencrypted); ``retries`` / ``wait_s``: how long it keeps trying a
    SuperLink it cannot reach."""
    config = f"site={json.dumps(site)} data={json.dumps(str(data))} work={json.dumps(str(work))}"
    tls = ["--root-certificates", str(ca)] if ca is not None else ["--insecure"]
    command = [flower_bin("flower-supernode"), *tls, "--superlink", superlink, "--port", str(port),
               "--node-config", config]  # fmt: skip
    if retries is not None:
        command += ["--max-retries", str(retries)]
    if wait_s is not None:
        command += ["--max-wait-time", str(wait_s)]
    return command


def write_app(folder: Path, recipe: Recipe, *, output: Path, sites: int, private: bool) -> Path:
    """The Flower app folder ``flwr run`` packages: seekforge's ServerApp and ClientApp by name, and the
    run config (the recipe without its data source, the number of sites, where the records go)."""
    folder.mkdir(parents=True, exist_ok=True)
    client = "private_client" if private else "client"
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "seekforge-{recipe.name.lower().replace("_", "-").replace(".", "-")}"\nversion = "1.0.0"\n'
        f'dependencies = []\n\n[tool.flwr.app]\npublisher = "seekforge"\n\n[tool.flwr.app.components]\n'
        f'serverapp = "{_MODULE}:server"\nclientapp = "{_MODULE}:{client}"\n\n[tool.flwr.app.config]\n'
        f"recipe = {json.dumps(recipe.to_yaml())}\noutput = {json.dumps(str(output))}\nsites = {sites}\n",
        encoding="utf-8",
    )
    return folder


def certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A certificate authority and the SuperLink's certificate for 127.0.0.1 and localhost it signed (30
    days), written to ``folder`` (the key readable by this user only): the CA's, the certificate's and the
    key's paths."""
    require("cryptography", purpose="a federation's TLS certificates", extra="federated")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    valid = {
        "not_valid_before": now - datetime.timedelta(minutes=5),
        "not_valid_after": now + datetime.timedelta(days=30),
    }
    authority_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    authority = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "seekforge federation CA")])
    ca = (x509.CertificateBuilder(subject_name=authority, issuer_name=authority, public_key=authority_key.public_key(),
                                  serial_number=x509.random_serial_number(), **valid)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(authority_key, hashes.SHA256()))  # fmt: skip
    names = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    certificate = (x509.CertificateBuilder(subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]),
                                           issuer_name=authority, public_key=key.public_key(),
                                           serial_number=x509.random_serial_number(), **valid)
                   .add_extension(names, critical=False).sign(authority_key, hashes.SHA256()))  # fmt: skip
    paths = folder / "ca.pem", folder / "superlink.pem", folder / "superlink.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths[2].touch(mode=0o600)
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return paths


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The processes started within, each stopped by its PID at the end (its whole process group: SIGTERM,
    then SIGKILL after 10 s), also when this process is sent SIGTERM meanwhile."""
    started: list[subprocess.Popen[bytes]] = []

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    handling = threading.current_thread() is threading.main_thread()  # (signals reach the main thread only)
    previous = signal.signal(signal.SIGTERM, stop) if handling else None
    try:
        yield started
    finally:
        if handling:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        for process in reversed(started):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in started:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            with contextlib.suppress(ProcessLookupError):  # what the group started, if still there
                os.killpg(process.pid, signal.SIGKILL)


def _start(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)  # fmt: skip


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DataError(f"the SuperLink exited ({process.returncode}): {_tail(log.read_text(errors='replace'))}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise DataError(f"the SuperLink did not listen on 127.0.0.1:{port} within {START_S:.0f} s", hint=f"see {log}")


def _follow(output: Path, started: list[subprocess.Popen[bytes]], logs: Path, rounds: int,
            on_round: Callable[[dict[str, Any]], None]) -> None:  # fmt: skip
    """Report each round the server records until it writes FINISHED; fail when a process dies or a round
    takes longer than ROUND_S."""
    seen, last = 0, time.monotonic()
    path = output / "rounds.jsonl"
    while True:
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        lines = text[: text.rfind("\n") + 1].splitlines()  # (a line being written waits for its end)
        for line in lines[seen:]:
            on_round(json.loads(line))
            last = time.monotonic()
        seen = max(seen, len(lines))
        if (output / FINISHED).is_file():
            return
        if (output / FAILED).is_file():
            failed = json.loads((output / FAILED).read_text(encoding="utf-8"))
            raise DataError(f"the federation's server failed after {seen} of {rounds} rounds: {failed['error']}",
                            hint=f"its log is in {logs}; resume with --resume once the cause is mended")  # fmt: skip
        dead = [p for p in started if p.poll() is not None]
        if dead:
            raise DataError(f"a Flower process exited ({' '.join(map(str, dead[0].args[:1]))}, code "
                            f"{dead[0].returncode}) after {seen} of {rounds} rounds", hint=f"its log is in {logs}")  # fmt: skip
        if time.monotonic() - last > ROUND_S:
            raise DataError(f"no round ended within {ROUND_S:.0f} s ({seen} of {rounds} done)", hint=f"see {logs}")
        time.sleep(0.5)


def join_site(recipe: Recipe, site: str, superlink: str, data: Path, *, port: int, retries: int,
              wait_s: float, ca: Path | None = None) -> int:  # fmt: skip
    """Run this machine's site as a SuperNode of the SuperLink at ``superlink`` until the federation ends or
    it is stopped; its rows (``data``) are checked against the recipe's features first, and only its own
    node reads them. Returns the SuperNode's exit code.

    Raises:
        DataError: The rows lack a declared column or hold a bad value (named), or the SuperLink could not
            be reached after ``retries`` tries (waiting up to ``wait_s`` seconds).
    """
    from seekforge.data import check_table, read_source

    check_table(read_source(str(data), recipe.data.read), recipe.features)
    ca = ca.resolve() if ca is not None else None
    work = data.resolve().parent / f".seekforge-{site}"
    home = work / "flwr"
    home.mkdir(parents=True, exist_ok=True)
    if ca is None:
        sys.stderr.write(f"seekforge: site {site} joins {superlink} unencrypted (no --ca given)\n")
    command = supernode_command(superlink, site, data.resolve(), port=port, work=work, ca=ca, retries=retries,
                                wait_s=wait_s)  # fmt: skip
    with processes() as started:
        started.append(_start(command, work / "supernode.log", flower_env(home)))
        code = started[0].wait()
    if code != 0:
        log = (work / "supernode.log").read_text(errors="replace")
        unreachable = "retr" in log.lower() or "connect" in log.lower()
        raise DataError((f"the SuperLink at {superlink} could not be reached ({retries} tries, up to {wait_s:.0f} s)"
                         if unreachable else f"the SuperNode of site {site} exited with code {code}") +
                        f": {_tail(log, 2)}", hint=f"check the address and that the SuperLink runs; log: {work / 'supernode.log'}")  # fmt: skip
    return code


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])
