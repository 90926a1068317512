"""`enclavectl policy`: make keys, sign and encrypt policies into manifests, verify, delete."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from rich.markup import escape

from enclave_operator.cli.common import fail
from enclave_operator.policies import client, document, envelope, manifests, signing

app = typer.Typer(help="Sign, encrypt, verify and delete CAS policies.", no_args_is_help=True)

PolicyFile = Annotated[Path, typer.Argument(help="The policy (YAML).", show_default=False)]
CASAddress = Annotated[
    str, typer.Option("--cas-address", help="casAddress of the resource: the CAS to register in.")
]
Namespace = Annotated[str | None, typer.Option("-n", "--namespace", help="Resource namespace.")]
Name = Annotated[str | None, typer.Option(help="Resource name (default: from the policy's).")]
CA = Annotated[Path | None, typer.Option("--ca", help="CA certificate that signed the CAS's.")]


def _fail(message: str) -> NoReturn:
    raise fail(escape(message))


def _policy(path: Path) -> tuple[str, document.Policy]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        _fail(f"{path}: {e.strerror}")
    except UnicodeDecodeError as e:
        _fail(f"{path}: not UTF-8 (byte {e.start})")
    try:
        return text, document.parse(text)
    except document.PolicyError as e:
        _fail(f"{path}: {e}")


def _key(path: Path) -> signing.PrivateKey:
    try:
        return signing.load_private_key(path)
    except (OSError, signing.SignatureError) as e:
        _fail(str(e) if isinstance(e, signing.SignatureError) else f"{path}: {e.strerror}")


@app.command()
def keygen(
    out: Annotated[Path, typer.Argument(help="Private key file to write (PEM, mode 0600).")],
) -> None:
    """Make an Ed25519 signing key: OUT (private) and OUT.pub."""
    key = signing.generate()
    try:
        public = signing.write_key_pair(key, out)
    except FileExistsError:
        _fail(f"{out} exists; choose another file (keys are never overwritten)")
    except OSError as e:
        _fail(f"{out}: {e.strerror}")
    signer = signing.signer_id(key.public_key())
    typer.echo(f"private key {out}, public key {public}")
    typer.echo(f"signer {signer} ({signing.fingerprint(signer)})")


@app.command()
def sign(
    policy: PolicyFile,
    key: Annotated[list[Path], typer.Option("--key", help="Private key; repeat for several.")],
    cas_address: CASAddress = manifests.DEFAULT_CAS_ADDRESS,
    namespace: Namespace = None,
    name: Name = None,
) -> None:
    """Print a SignedPolicy manifest (pipe it to `kubectl apply -f -`)."""
    text, parsed = _policy(policy)
    sigs = [signing.sign(text.encode(), _key(k)) for k in key]
    rname = name or manifests.resource_name(parsed.name)
    typer.echo(
        manifests.dump(manifests.signed(rname, namespace, cas_address, text, sigs)), nl=False
    )


@app.command()
def encrypt(
    policy: PolicyFile,
    cas: Annotated[str, typer.Option("--cas", help="CAS to fetch the key from: host:port.")],
    ca: CA = None,
    key: Annotated[
        list[Path] | None, typer.Option("--key", help="Also sign (the signers own the policy).")
    ] = None,
    cas_address: Annotated[
        str | None, typer.Option("--cas-address", help="casAddress (default: --cas).")
    ] = None,
    namespace: Namespace = None,
    name: Name = None,
) -> None:
    """Print an EncryptedPolicy manifest sealed to the CAS's key (fetched over verified TLS)."""
    text, parsed = _policy(policy)
    sigs = [signing.sign(text.encode(), _key(k)) for k in key or []]

    async def fetch() -> str:
        async with client.CASClient(cas, client.tls_context(ca)) as c:
            return await c.encryption_key()

    encryption_key = _run(fetch())
    try:
        sealed = envelope.seal(text, sigs, envelope.load_public_key(encryption_key))
    except envelope.EnvelopeError as e:
        _fail(f"the CAS at {cas} sent an unusable key: {e}")
    manifest = manifests.encrypted(
        name or manifests.resource_name(parsed.name),
        namespace,
        cas_address or cas,
        sealed,
        encryption_key,
    )
    typer.echo(manifests.dump(manifest), nl=False)


@app.command()
def verify(
    manifest: Annotated[Path, typer.Argument(help="A SignedPolicy manifest.")],
) -> None:
    """Check a SignedPolicy manifest: the policy validates and every signature verifies."""
    try:
        doc: Any = yaml.safe_load(manifest.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        _fail(f"{manifest}: {e}")
    spec = doc.get("spec") if isinstance(doc, dict) else None
    if not isinstance(spec, dict) or doc.get("kind") != "SignedPolicy":
        _fail(f"{manifest}: not a SignedPolicy manifest")
    text = spec.get("policy")
    if not isinstance(text, str):
        _fail(f"{manifest}: spec.policy is missing")
    try:
        parsed = document.parse(text)
    except document.PolicyError as e:
        _fail(f"{manifest}: spec.policy: {e}")
    sigs = spec.get("signatures") or []
    if not sigs:
        _fail(f"{manifest}: spec.signatures is empty")
    for i, s in enumerate(sigs):
        try:
            signing.verify(text.encode(), signing.Signature(str(s["signer"]), str(s["signature"])))
        except (KeyError, TypeError):
            _fail(f"{manifest}: spec.signatures[{i}] needs signer and signature")
        except signing.SignatureError as e:
            _fail(f"{manifest}: spec.signatures[{i}]: {e}")
        typer.echo(f"ok: signed by {signing.fingerprint(str(s['signer']))}")
    typer.echo(f"policy {parsed.name} (digest {document.digest(text)}) verifies")


@app.command()
def delete(
    name: Annotated[str, typer.Argument(help="Policy name (the name inside the policy).")],
    key: Annotated[Path, typer.Option("--key", help="Private key of one of its signers.")],
    cas: Annotated[str, typer.Option("--cas", help="CAS: host:port.")],
    ca: CA = None,
) -> None:
    """Delete a policy from a CAS with a request signed by one of its owners."""
    owner = _key(key)

    async def call() -> None:
        async with client.CASClient(cas, client.tls_context(ca)) as c:
            await c.delete(name, owner)

    _run(call())
    typer.echo(f"deleted policy {name}")


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except client.AddressError as e:
        _fail(str(e))
    except client.Unreachable as e:
        _fail(f"CAS unreachable: {e}")
    except client.Refused as e:
        _fail(f"CAS refused ({e.status}): {e.message}")
    except (OSError, ValueError) as e:  # an unreadable --ca file
        _fail(str(e))
