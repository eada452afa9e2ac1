"""Flower's deployment runtime: a SuperLink over TLS (a certificate authority made for the run) that
admits only the SuperNodes whose public keys it registered (Flower's CLI-managed node authentication:
each site's EC key pair, its public key registered with ``flwr supernode register``), and the run
submitted with ``flwr run`` as a Flower app seekforge writes, which names the node registered for each
site. Every process is stopped by its PID (its process group: the SuperLink and SuperNodes start Flower's
own runtime processes) when the run ends or fails.

On this machine (``federate --deployment``) one SuperNode per site runs beside the SuperLink on
127.0.0.1, each site's rows in its own file that only its node reads; for sites on their own machines
(``federate server``) the SuperLink listens for them, and each runs its node there (``federate site``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from seekforge.core.errors import ConfigError, DataError
from seekforge.federate._site import CHECKPOINT, ROUNDS, kept_round, resume_point, server_recipe, site_rows, write_sites
from seekforge.federate._tls import certificate_names, certificates, site_keys
from seekforge.recipe import Recipe

#: the ServerApp and ClientApps the app folder names (seekforge.federate._deployed)
_MODULE = "seekforge.federate._deployed"
#: written by the server when every round is done, or when it failed (with what failed)
FINISHED, FAILED = "finished.json", "failed.json"
#: how long the SuperLink may take to listen, and a round at most (a site that died, say)
START_S = float(os.environ.get("SEEKFORGE_FEDERATE_START_S", "120"))
ROUND_S = float(os.environ.get("SEEKFORGE_FEDERATE_ROUND_S", "3600"))
#: how long the sites may take to connect (a local deployment's; federate server takes --wait)
CONNECT_S = float(os.environ.get("SEEKFORGE_FEDERATE_CONNECT_S", "300"))
#: how often the SuperLink is asked whether the run still runs
STATUS_S = 30.0


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
    """Run the federation on a local SuperLink and one SuperNode per site, each with its own key; return
    when every round is done.

    Raises:
        DataError: The SuperLink did not start, a process died, or a round took longer than ``ROUND_S``.
    """
    output = output.resolve()  # (Flower's config takes absolute paths; its processes may start elsewhere)
    # (a site's name is a column's value: its key files are named by its number, as its rows' folder is)
    keys = {name: site_keys(f"site-{n}", output / "flwr" / "keys", reuse=True) for n, name in enumerate(sites)}

    def start_nodes(started: list[subprocess.Popen[bytes]], address: str, ca: Path, env: dict[str, str]) -> None:
        for number, (name, data, work) in enumerate(write_sites(sites, output / "sites")):  # only its node reads it
            command = supernode_command(address, name, data, port=free_port(), work=work, ca=ca, key=keys[name][0])
            started.append(_start(command, output / "logs" / f"supernode-{number}.log", env))

    run_superlink(recipe, output, {name: pair[1] for name, pair in keys.items()}, host="127.0.0.1", port=free_port(),
                  on_round=on_round, local_nodes=start_nodes)  # fmt: skip


def run_superlink(recipe: Recipe, output: Path, keys: dict[str, Path], *, host: str, port: int,
                  on_round: Callable[[dict[str, Any]], None], names: Sequence[str] = (),
                  connect_s: float = CONNECT_S, local_nodes: Callable[..., None] | None = None,
                  waiting: Callable[[str, Path, list[str]], None] | None = None) -> None:  # fmt: skip
    """Run the federation on a SuperLink for ``host``:``port``; return when every round is done.

    TLS: a certificate for 127.0.0.1, localhost, the host and ``names``, kept in ``output/flwr/tls`` and
    reused on a resume (the sites keep their CA) while it names them all and is valid. Each site's public
    key (``keys``, by site) is registered, and only those nodes are admitted. On 127.0.0.1 the SuperLink
    itself listens there and ``local_nodes(started, address, ca, env)`` starts the sites' nodes; on any other
    address it listens on 127.0.0.1 only and a gate (:mod:`seekforge.federate._gate`) passes the Fleet API
    on from ``host``:``port``, then ``waiting(address, ca, names)`` says what the sites run. The run is
    submitted with ``flwr run`` and followed round by round; every process is stopped by PID at the end.

    Raises:
        DataError: The SuperLink did not start or refused a key, a process died, a site did not connect
            within ``connect_s``, or a round took longer than ``ROUND_S``.
    """
    fed = recipe.federated
    assert fed is not None
    output = output.resolve()
    home, logs = output / "flwr", output / "logs"
    for folder in (home, logs):
        folder.mkdir(parents=True, exist_ok=True)
    for marker in (FINISHED, FAILED):
        (output / marker).unlink(missing_ok=True)
    resume_point(output)  # (a round recorded but not kept runs again: its line goes before anyone reads it)
    gated = host != "127.0.0.1"
    inner = free_port() if gated else port  # the SuperLink's own port, on 127.0.0.1
    if gated and host in ("0.0.0.0", ""):
        names = [*names, *{socket.gethostname(), socket.getfqdn()}]  # (what sites most likely call this machine)
    public = [n for n in (host, *names) if n not in ("0.0.0.0", "")] if gated else []
    ca, certificate, key = certificates(home / "tls", names=public)
    (home / "config.toml").write_text(f'[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = '
                                      f'"127.0.0.1:{inner}"\nroot-certificates = {json.dumps(str(ca))}\n',
                                      encoding="utf-8")  # fmt: skip
    env = flower_env(home)
    tls = ["--ssl-ca-certfile", str(ca), "--ssl-certfile", str(certificate), "--ssl-keyfile", str(key)]
    with processes() as started:  # (no --database: its state is kept in memory; the rounds are seekforge's)
        started.append(_start([flower_bin("flower-superlink"), *tls, "--host", "127.0.0.1", "--port", str(inner),
                               "--enable-supernode-auth", "--disable-runtime-dependency-installation"],
                              logs / "superlink.log", env))  # fmt: skip
        _wait_listening("127.0.0.1", inner, started[0], logs / "superlink.log")
        if gated:
            started.append(_start([sys.executable, "-m", "seekforge.federate._gate", "--listen", f"{host}:{port}",
                                   "--upstream", f"127.0.0.1:{inner}", "--cert", str(certificate), "--key", str(key),
                                   "--ca", str(ca)], logs / "gate.log", env))  # fmt: skip
            _wait_listening("127.0.0.1" if host in ("0.0.0.0", "") else host, port, started[-1], logs / "gate.log")
        nodes = {register(public, name, env): name for name, public in keys.items()}
        app = write_app(output / "app", server_recipe(recipe), output=output, nodes=nodes, connect_s=connect_s,
                        private=fed.privacy is not None)  # fmt: skip
        if local_nodes is not None:
            local_nodes(started, f"127.0.0.1:{inner}", ca, env)
        elif waiting is not None:
            waiting(f"{host}:{port}", ca, certificate_names(certificate))
        submitted = subprocess.run([flower_bin("flwr"), "run", str(app), "local", "--format", "json"], env=env,
                                   capture_output=True, text=True, timeout=START_S, check=False)  # fmt: skip
        try:  # (flwr run exits 0 and says success false when it could not submit)
            answer = json.loads(submitted.stdout)
        except json.JSONDecodeError:
            answer = {}
        if submitted.returncode != 0 or answer.get("success") is not True:
            raise DataError(f"flwr run could not submit the federation: {_tail(submitted.stdout + submitted.stderr)}")
        _follow(output, started, logs, fed.rounds, on_round, connect_s=connect_s,
                status=lambda: _run_status(str(answer.get("run-id")), env))  # fmt: skip


def register(public: Path, site: str, env: dict[str, str]) -> int:
    """Register ``site``'s public key with the SuperLink of ``env``'s Flower config; the node's id.

    Raises:
        DataError: The SuperLink refused the key (not an EC key, say), named.
    """
    done = subprocess.run([flower_bin("flwr"), "supernode", "register", str(public), "local", "--format", "json"],
                          env=env, capture_output=True, text=True, timeout=START_S, check=False)  # fmt: skip
    try:
        answer = json.loads(done.stdout)
    except json.JSONDecodeError:
        answer = {}
    if done.returncode != 0 or not answer.get("success") or "node-id" not in answer:
        raise DataError(f"the SuperLink did not register site {site}'s key {public}: {_tail(done.stdout + done.stderr)}",
                        hint=f"make the site's key pair with: seekforge federate keys --site {site}")  # fmt: skip
    return int(answer["node-id"])


def supernode_command(superlink: str, site: str, data: Path, *, port: int, work: Path, ca: Path | None,
                      key: Path | None = None, retries: int | None = None,
                      wait_s: float | None = None) -> list[str]:  # fmt: skip
    """The SuperNode of one site: its name and its own rows in its node config; TLS checked against the
    certificate authority ``ca`` (None: unencrypted); ``key``: its private key, which a SuperLink that
    authenticates nodes checks; ``retries`` / ``wait_s``: how long it keeps trying a SuperLink it cannot
    reach."""
    config = f"site={json.dumps(site)} data={json.dumps(str(data))} work={json.dumps(str(work))}"
    tls = ["--root-certificates", str(ca)] if ca is not None else ["--insecure"]
    command = [flower_bin("flower-supernode"), *tls, "--superlink", superlink, "--port", str(port),
               "--node-config", config]  # fmt: skip
    if key is not None:
        command += ["--auth-supernode-private-key", str(key)]
    if retries is not None:
        command += ["--max-retries", str(retries)]
    if wait_s is not None:
        command += ["--max-wait-time", str(wait_s)]
    return command


def write_app(folder: Path, recipe: Recipe, *, output: Path, nodes: dict[int, str], connect_s: float,
              private: bool) -> Path:  # fmt: skip
    """The Flower app folder ``flwr run`` packages: seekforge's ServerApp and ClientApp by name, and the
    run config (the recipe without its data source, the node registered for each site, how long the sites
    may take to connect, where the records go)."""
    folder.mkdir(parents=True, exist_ok=True)
    client = "private_client" if private else "client"
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "seekforge-{recipe.name.lower().replace("_", "-").replace(".", "-")}"\nversion = "1.0.0"\n'
        f'dependencies = []\n\n[tool.flwr.app]\npublisher = "seekforge"\n\n[tool.flwr.app.components]\n'
        f'serverapp = "{_MODULE}:server"\nclientapp = "{_MODULE}:{client}"\n\n[tool.flwr.app.config]\n'
        f"recipe = {json.dumps(recipe.to_yaml())}\noutput = {json.dumps(str(output))}\n"
        f"nodes = {json.dumps(json.dumps({str(n): s for n, s in nodes.items()}))}\nconnect-s = {float(connect_s)}\n",
        encoding="utf-8",
    )
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The processes started within, each stopped by its PID at the end with every process it started (its
    process group, and the descendants that left it: Flower starts a ServerApp in a session of its own;
    SIGTERM, then SIGKILL after 10 s), also when this process is sent SIGTERM meanwhile."""
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
        family = descendants([p.pid for p in started])  # (before any stops: an orphan's parent is init)
        for process in reversed(started):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for pid in family:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
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
        for pid in family:
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def descendants(roots: list[int]) -> list[int]:
    """Every process started by ``roots`` or by a process they started (from /proc, else ``ps``; none when
    neither can say)."""
    if not roots:
        return []
    children: dict[int, list[int]] = {}
    for pid, parent in _parents():
        children.setdefault(parent, []).append(pid)
    found, todo = [], list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


def _parents() -> list[tuple[int, int]]:
    """(pid, parent pid) of every process."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):  # (a process gone meanwhile)
            found.append((int(stat.parent.name), int(stat.read_text().rsplit(")", 1)[1].split()[1])))
    if found:
        return found
    try:  # (macOS: no /proc)
        listing = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True, text=True, check=False)
    except OSError:
        return []
    pairs = [line.split() for line in listing.stdout.splitlines()]
    return [(int(p[0]), int(p[1])) for p in pairs if len(p) == 2 and p[0].isdigit() and p[1].isdigit()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # (another user's: its number was reused)
        return False
    return True


def _start(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)  # fmt: skip


def _wait_listening(host: str, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DataError(f"the SuperLink exited ({process.returncode}): {_tail(log.read_text(errors='replace'))}")
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise DataError(f"the SuperLink did not listen on {host}:{port} within {START_S:.0f} s", hint=f"see {log}")


def _follow(output: Path, started: list[subprocess.Popen[bytes]], logs: Path, rounds: int,
            on_round: Callable[[dict[str, Any]], None], *, connect_s: float,
            status: Callable[[], str | None]) -> None:  # fmt: skip
    """Report each round the server records until it writes FINISHED; fail when a process dies, when the
    SuperLink says the run ended without it (``status``, asked every STATUS_S: a ServerApp killed outright
    writes nothing), or when a round takes longer than ROUND_S (the first: ROUND_S after ``connect_s``)."""
    seen = kept_round(output / CHECKPOINT)  # (a resume reports the rounds after it)
    last, asked = time.monotonic() + connect_s, time.monotonic()
    path = output / ROUNDS
    while True:
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        for line in text[: text.rfind("\n") + 1].splitlines():  # (a line being written waits for its end)
            record = json.loads(line)
            if record["round"] > seen:
                _kept(output, record["round"])
                on_round(record)
                seen, last = record["round"], time.monotonic()
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
        if time.monotonic() >= asked + STATUS_S:
            asked, said = time.monotonic(), status()
            if said is not None and said.startswith("finished") and not (output / FINISHED).is_file():
                time.sleep(1.0)  # (a ServerApp that failed writes why just before it ends)
                if not (output / FINISHED).is_file() and not (output / FAILED).is_file():
                    raise DataError(f"the federation's server ended ({said}) after {seen} of {rounds} rounds without "
                                    "finishing", hint=f"its log is in {logs}; resume with --resume")  # fmt: skip
        time.sleep(0.5)


def _kept(output: Path, round_: int, wait_s: float = 30.0) -> None:
    """Until the server has kept the weights of ``round_``, which it does just after the round's line (a
    server stopped in between: not at all; the round is then said without them)."""
    deadline = time.monotonic() + wait_s
    while kept_round(output / CHECKPOINT) < round_ and time.monotonic() < deadline:
        time.sleep(0.2)


def _run_status(run: str, env: dict[str, str]) -> str | None:
    """The SuperLink's word on the run (``running``, ``finished:failed``...); None when it cannot say."""
    asked = subprocess.run([flower_bin("flwr"), "ls", "local", "--run-id", run, "--format", "json"], env=env,
                           capture_output=True, text=True, timeout=START_S, check=False)  # fmt: skip
    try:
        runs = json.loads(asked.stdout).get("runs") or [{}]
    except json.JSONDecodeError:
        return None
    return str(runs[0].get("status")) if runs[0].get("status") else None


def join_site(recipe: Recipe, site: str, superlink: str, data: Path, *, port: int, retries: int,
              wait_s: float, ca: Path | None = None, key: Path | None = None) -> int:  # fmt: skip
    """Run this machine's site as a SuperNode of the SuperLink at ``superlink`` until the federation ends or
    it is stopped; its rows (``data``) are checked against the recipe's features first, and only its own
    node reads them; ``key``: its private key (``federate keys``), which a SuperLink that authenticates
    nodes checks against the public key it registered. Returns the SuperNode's exit code.

    Raises:
        ConfigError: A site the recipe does not list, ``key`` is not a file, or a key without ``ca`` (Flower
            authenticates nodes over TLS only).
        DataError: The rows lack a declared column or hold a bad value (named), the SuperLink's certificate
            does not name the address, the SuperLink did not admit the node within ``wait_s``, or it could
            not be reached after ``retries`` tries.
    """
    from seekforge.data import check_table

    remote = recipe.federated.sites.remote if recipe.federated is not None else None
    if remote is not None and site not in remote:
        raise ConfigError(f"--site {site}: the recipe's federated.sites.remote names {', '.join(remote)}",
                          hint="join as one of them, the one whose key this site holds")  # fmt: skip
    if key is not None and not key.is_file():
        raise ConfigError(f"--key {key}: no such file",
                          hint=f"make the site's key pair: seekforge federate keys --site {site}")  # fmt: skip
    if key is not None and ca is None:
        raise ConfigError("--key without --ca: a SuperLink authenticates nodes over TLS only",
                          hint="pass the server's CA certificate: --ca ca.pem")  # fmt: skip
    check_table(site_rows(recipe, data), recipe.features)
    ca = ca.resolve() if ca is not None else None
    work = data.resolve().parent / f".seekforge-{site}"
    home = work / "flwr"
    home.mkdir(parents=True, exist_ok=True)
    if ca is None:
        sys.stderr.write(f"seekforge: site {site} joins {superlink} unencrypted (no --ca given)\n")
    command = supernode_command(superlink, site, data.resolve(), port=port, work=work, ca=ca, retries=retries,
                                wait_s=wait_s, key=key.resolve() if key is not None else None)  # fmt: skip
    path, deadline = work / "supernode.log", time.monotonic() + wait_s
    with processes() as started:
        while True:  # a SuperLink that does not admit the node yet (its key not registered yet) is tried again
            offset = path.stat().st_size if path.exists() else 0
            started.append(_start(command, path, flower_env(home)))
            code = started[-1].wait()
            with contextlib.suppress(ProcessLookupError):  # (what it started, before its number is reused)
                os.killpg(started[-1].pid, signal.SIGKILL)
            started.pop()
            log = path.read_bytes()[offset:].decode(errors="replace")
            refused = "failed to activate" in log.lower()
            if code == 0 or not refused or time.monotonic() >= deadline:
                break
            time.sleep(min(5.0, max(0.5, deadline - time.monotonic())))
    if code != 0:
        if refused:
            raise DataError(f"the SuperLink at {superlink} refused site {site}'s node for {wait_s:.0f} s: "
                            f"{_reason(log)}", hint="its NAME.pub must be among the server's --keys, and its "
                            "NAME.key given here with --key")  # fmt: skip
        if "certificate" in log.lower() and "verify" in log.lower():
            raise DataError(f"the SuperLink at {superlink} has a certificate that --ca {ca} does not vouch for, or "
                            f"that does not name {superlink.rpartition(':')[0]}: {_reason(log)}",
                            hint="use the ca.pem the server printed, and an address its certificate names "
                                 "(federate server --name HOST)")  # fmt: skip
        unreachable = "retr" in log.lower() or "connect" in log.lower()
        raise DataError((f"the SuperLink at {superlink} could not be reached ({retries} tries, up to {wait_s:.0f} s)"
                         if unreachable else f"the SuperNode of site {site} exited with code {code}") +
                        f": {_reason(log)}", hint=f"check the address and that the SuperLink runs; log: {work / 'supernode.log'}")  # fmt: skip
    return code


def _reason(log: str) -> str:
    """What a Flower process's log says went wrong: its lines naming a failure (else its last two)."""
    log = re.sub(r"\x1b\[[0-9;]*m", "", log)  # (Flower colours its log)
    said = [line for line in log.splitlines() if any(w in line.lower() for w in ("fail", "error", "[code"))]
    return _tail("\n".join(said[-3:])) if said else _tail(log, 2)


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])
