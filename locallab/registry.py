"""The lab's image registry: Debian's docker-registry (distribution 2.8) in a lab namespace, and a small push client.

containerd on the workers reaches it through the program's registry mirror setting (hosts.toml), asking for an
image under its path without the registry host: /v2/library/nginx/manifests/1.29?ns=docker.io. So each image is
pushed under Image.repository (pause, coredns/coredns, library/nginx, library/busybox) with its tag.

The registry listens on an address inside a lab namespace, which the lab's own process cannot reach: the client runs
inside the namespace as `python -m locallab.registry push|check|ping ...` (run_client), standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REGISTRY_BINARY = "/usr/bin/docker-registry"
REGISTRY_PORT = 5000
REPOSITORY_ROOT = Path(__file__).resolve().parents[1]     # where `python -m locallab.registry` is found
# What containerd's resolver sends when it resolves a tag (remotes/docker/resolver.go).
CONTAINERD_ACCEPT = ", ".join(["application/vnd.docker.distribution.manifest.v2+json",
                               "application/vnd.docker.distribution.manifest.list.v2+json",
                               "application/vnd.oci.image.manifest.v1+json",
                               "application/vnd.oci.image.index.v1+json", "*/*"])


class RegistryError(RuntimeError):
    pass


def registry_config(*, storage: Path, address: str, port: int = REGISTRY_PORT) -> str:
    """Filesystem storage, plain HTTP, no authentication, nothing can be deleted. distribution has no log file
    setting: it logs to stderr, which start_registry sends to a file."""
    return f"""version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: false
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {address}:{port}
  headers:
    X-Content-Type-Options: [nosniff]
"""


def start_registry(lab, host: str, *, storage: Path, workdir: Path, port: int = REGISTRY_PORT,
                   timeout: float = 30.0) -> int:
    """Starts docker-registry in the lab host's namespace on its address and waits until /v2/ answers; returns its
    pid. Configuration and log: workdir/registry.yml, workdir/registry.log."""
    address = lab.addresses[host]
    storage.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "registry.yml"
    config.write_text(registry_config(storage=storage, address=address, port=port))
    log_path = workdir / "registry.log"
    with open(log_path, "ab") as log:
        process = lab.popen(host, REGISTRY_BINARY, "serve", str(config), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://{address}:{port}"
    deadline = time.monotonic() + timeout
    while run_client(lab, host, "ping", url, check=False).returncode != 0:
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
            raise RegistryError(f"docker-registry did not answer on {url}/v2/ within {timeout:.0f}s "
                                f"(exit code {process.poll()}); {log_path} ends with:\n{tail}")
        time.sleep(0.2)
    return process.pid


def run_client(lab, host: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """This module's command line, run inside the lab host's namespace."""
    result = lab.exec(host, sys.executable, "-m", "locallab.registry", *args, check=False, cwd=REPOSITORY_ROOT)
    if check and result.returncode != 0:
        raise RegistryError(f"registry client {args[0]} failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return result


def push_images(lab, host: str, registry_url: str, images) -> dict:
    """Pushes each Image (locallab.images) from the lab host's namespace; returns what was uploaded and skipped."""
    targets = [f"{image.layout}={image.repository}:{image.tag}" for image in images]
    return json.loads(run_client(lab, host, "push", registry_url, *targets).stdout)


# --- the client: the distribution HTTP API, standard library only ---------------------------------------------------

# Straight to the registry: a proxy from the environment could not reach a lab namespace's address anyway.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _request(method: str, url: str, *, data=None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _expect(status: int, wanted: int, what: str, body: bytes) -> None:
    if status != wanted:
        raise RegistryError(f"{what}: HTTP {status}, expected {wanted}: {body[:500].decode(errors='replace')}")


def push_blob(registry_url: str, repository: str, digest: str, path: Path) -> bool:
    """Uploads one blob unless the registry has it; True when it was uploaded. A monolithic upload: POST opens an
    upload session, one PUT with the digest sends the whole blob and closes it."""
    blob_url = f"{registry_url}/v2/{repository}/blobs/{digest}"
    status, _, _ = _request("HEAD", blob_url)
    if status == 200:
        return False
    status, headers, body = _request("POST", f"{registry_url}/v2/{repository}/blobs/uploads/")
    _expect(status, 202, f"starting the upload of {digest} to {repository}", body)
    location = headers["Location"]
    if location.startswith("/"):
        location = registry_url + location
    separator = "&" if "?" in location else "?"
    size = path.stat().st_size
    with open(path, "rb") as blob:
        status, _, body = _request("PUT", f"{location}{separator}digest={digest}", data=blob,
                                   headers={"Content-Type": "application/octet-stream",
                                            "Content-Length": str(size)})
    _expect(status, 201, f"uploading {digest} ({size} bytes) to {repository}", body)
    return True


def push_layout(registry_url: str, layout: Path, repository: str, tag: str) -> dict:
    """The single image of an OCI layout (locallab.images) under repository:tag: blobs first, then the manifest."""
    entry = json.loads((layout / "index.json").read_text())["manifests"][0]
    manifest_path = layout / "blobs" / "sha256" / entry["digest"].split(":")[1]
    manifest = json.loads(manifest_path.read_text())
    uploaded = skipped = 0
    for descriptor in [manifest["config"], *manifest["layers"]]:
        path = layout / "blobs" / "sha256" / descriptor["digest"].split(":")[1]
        if push_blob(registry_url, repository, descriptor["digest"], path):
            uploaded += descriptor["size"]
        else:
            skipped += descriptor["size"]
    status, headers, body = _request("PUT", f"{registry_url}/v2/{repository}/manifests/{tag}",
                                     data=manifest_path.read_bytes(),
                                     headers={"Content-Type": entry["mediaType"]})
    _expect(status, 201, f"putting the manifest of {repository}:{tag}", body)
    if headers.get("Docker-Content-Digest") != entry["digest"]:
        raise RegistryError(f"the registry stored {repository}:{tag} as {headers.get('Docker-Content-Digest')}, "
                            f"not {entry['digest']}")
    return {"digest": entry["digest"], "uploaded_bytes": uploaded, "skipped_bytes": skipped}


def read_back(registry_url: str, repository: str, tag: str, namespace: str) -> dict:
    """What containerd does through a mirror: resolve the tag with its Accept header and the upstream registry as
    `ns`, fetch the manifest by digest, then every blob; each blob is checked against its digest."""
    query = f"?ns={namespace}"
    status, headers, body = _request("HEAD", f"{registry_url}/v2/{repository}/manifests/{tag}{query}",
                                     headers={"Accept": CONTAINERD_ACCEPT})
    _expect(status, 200, f"resolving {repository}:{tag}", body)
    digest = headers["Docker-Content-Digest"]
    status, headers, body = _request("GET", f"{registry_url}/v2/{repository}/manifests/{digest}{query}",
                                     headers={"Accept": CONTAINERD_ACCEPT})
    _expect(status, 200, f"fetching the manifest {digest}", body)
    if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
        raise RegistryError(f"the manifest of {repository}:{tag} does not match its digest {digest}")
    manifest = json.loads(body)
    blobs = [manifest["config"], *manifest["layers"]]
    for descriptor in blobs:
        status, _, blob = _request("GET", f"{registry_url}/v2/{repository}/blobs/{descriptor['digest']}{query}")
        _expect(status, 200, f"fetching the blob {descriptor['digest']}", blob)
        if "sha256:" + hashlib.sha256(blob).hexdigest() != descriptor["digest"] or len(blob) != descriptor["size"]:
            raise RegistryError(f"the blob {descriptor['digest']} of {repository}:{tag} does not match its digest")
    return {"digest": digest, "media_type": headers.get("Content-Type"), "blobs": len(blobs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m locallab.registry", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("ping", help="exit 0 when /v2/ answers 200").add_argument("url")
    push = commands.add_parser("push", help="push OCI layouts; prints what was uploaded as JSON")
    push.add_argument("url")
    push.add_argument("targets", nargs="+", metavar="LAYOUT=REPOSITORY:TAG")
    check = commands.add_parser("check", help="read images back as containerd would; prints JSON")
    check.add_argument("url")
    check.add_argument("targets", nargs="+", metavar="NAMESPACE/REPOSITORY:TAG")
    args = parser.parse_args(argv)
    if args.command == "ping":
        try:
            return 0 if _request("GET", f"{args.url}/v2/")[0] == 200 else 1
        except OSError:
            return 1
    results = {}
    for target in args.targets:
        if args.command == "push":
            layout, _, name = target.partition("=")
            repository, _, tag = name.rpartition(":")
            results[name] = push_layout(args.url, Path(layout), repository, tag)
        else:
            namespace, _, name = target.partition("/")
            repository, _, tag = name.rpartition(":")
            results[target] = read_back(args.url, repository, tag, namespace)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
