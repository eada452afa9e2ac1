"""A federation's credentials: the certificate authority and the SuperLink's TLS certificate made for a run,
and each site's key pair, whose public half the SuperLink registers (Flower's node authentication)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seekforge.core.deps import require
from seekforge.core.errors import ConfigError
from seekforge.core.io import atomic_dir, write_text_atomic


def site_keys(site: str, folder: Path, *, reuse: bool = False) -> tuple[Path, Path]:
    """An EC (P-384) key pair for ``site``'s SuperNode in ``folder``: ``SITE.key`` (OpenSSH, readable by its
    owner only; it stays at the site) and ``SITE.pub`` (OpenSSH; the server registers it). ``reuse``: a
    pair already there is kept.

    Raises:
        ConfigError: A key file is already there (and not ``reuse``).
    """
    private, public = folder / f"{site}.key", folder / f"{site}.pub"
    if private.is_file() and public.is_file() and reuse:
        return private, public
    if private.exists() or public.exists():
        raise ConfigError(f"{private if private.exists() else public} already exists; a site's key is made once",
                          hint="give the site's existing .pub to the server, or move the old pair away first")  # fmt: skip
    require("cryptography", purpose="a site's key pair", extra="federated")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP384R1())
    folder.mkdir(parents=True, exist_ok=True)
    _write_private(private, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                              serialization.NoEncryption()))  # fmt: skip
    write_text_atomic(public, key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                            serialization.PublicFormat.OpenSSH).decode() + "\n")  # fmt: skip
    return private, public


def _write_private(path: Path, data: bytes) -> None:
    """``data`` written to ``path`` atomically, readable by this user only from its first byte."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)  # (made 0600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def certificates(folder: Path, *, names: Sequence[str] = ()) -> tuple[Path, Path, Path]:
    """A certificate authority and the SuperLink's certificate it signed (30 days) for 127.0.0.1,
    localhost and ``names`` (host names or IP addresses), written together to ``folder`` (the key
    readable by this user only): the CA's, the certificate's and the key's paths. Those already in
    ``folder`` are kept while they name every one of ``names`` and are valid for a day more (a resumed
    server keeps the CA its sites were given); otherwise new ones are made, and said."""
    paths = folder / "ca.pem", folder / "superlink.pem", folder / "superlink.key"
    wanted = {"127.0.0.1", "localhost", *names}
    require("cryptography", purpose="a federation's TLS certificates", extra="federated")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    if all(p.is_file() for p in paths):
        kept = x509.load_pem_x509_certificate(paths[1].read_bytes())
        if wanted <= set(certificate_names(paths[1])) and kept.not_valid_after_utc > now + datetime.timedelta(days=1):
            return paths
        warnings.warn(f"{folder}: a new certificate authority (the old certificate had expired or did not name "
                      f"{', '.join(sorted(wanted - set(certificate_names(paths[1]))) or 'every host')}): give the "
                      "sites the new ca.pem", UserWarning, stacklevel=2)  # fmt: skip
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
    alternative = x509.SubjectAlternativeName([_alternative_name(n, x509) for n in sorted(wanted)])
    common = next((n for n in names if n not in ("127.0.0.1", "localhost")), "127.0.0.1")
    certificate = (x509.CertificateBuilder(subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)]),
                                           issuer_name=authority, public_key=key.public_key(),
                                           serial_number=x509.random_serial_number(), **valid)
                   .add_extension(alternative, critical=False).sign(authority_key, hashes.SHA256()))  # fmt: skip
    with atomic_dir(folder, overwrite=True) as tmp:  # (the three together: never a key beside another's certificate)
        _write_private(tmp / paths[2].name, key.private_bytes(serialization.Encoding.PEM,
                                                              serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption()))  # fmt: skip
        (tmp / paths[1].name).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        (tmp / paths[0].name).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return paths


def certificate_names(path: Path) -> list[str]:
    """The host names and addresses a certificate (PEM) is valid for."""
    from cryptography import x509

    named = (
        x509.load_pem_x509_certificate(path.read_bytes())
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value
    )
    return [str(n) for n in named.get_values_for_type(x509.DNSName)] + [
        str(a) for a in named.get_values_for_type(x509.IPAddress)
    ]


def _alternative_name(name: str, x509: Any) -> Any:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)
