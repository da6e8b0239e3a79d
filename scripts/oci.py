#!/usr/bin/env python3
"""Writes OCI image layouts of Wasm plugins for Istio's image fetcher,
without Docker and reproducibly (same module bytes -> same digests).

    scripts/oci.py OUT_DIR PLUGIN=PATH.wasm[:root_id,root_id...] ...

Each OUT_DIR/<plugin>/ is an OCI image layout (oci-layout, index.json,
blobs/sha256/) with two manifests, one per variant of the Wasm image
specification that Istio's fetcher (pkg/wasm/imagefetcher.go) accepts:

  ref "compat": one application/vnd.oci.image.layer.v1.tar+gzip layer holding
                plugin.wasm, manifest annotation module.wasm.image/variant=compat;
  ref "oci":    the runtime config (application/vnd.module.wasm.config.v1+json)
                and the module itself as an uncompressed
                application/vnd.module.wasm.content.layer.v1+wasm layer, so the
                layer digest IS the module's sha256 (what Envoy's
                vm_config.code.remote checks).

Reproducible: tar entries have mtime 0, uid/gid 0, no user names; gzip has
mtime 0 and no file name; JSON is written with sorted keys and fixed
separators; nothing reads the clock. Standard library only.
"""
import gzip
import hashlib
import io
import json
import re
import shutil
import sys
import tarfile
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
WASM_CONFIG = "application/vnd.module.wasm.config.v1+json"
WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"
TITLE = "org.opencontainers.image.title"
REF_NAME = "org.opencontainers.image.ref.name"


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class Layout:
    def __init__(self, root):
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)

    def blob(self, data, media_type, annotations=None):
        """Stores `data`; returns its descriptor."""
        hexd = hashlib.sha256(data).hexdigest()
        (self.blobs / hexd).write_bytes(data)
        desc = {"mediaType": media_type, "digest": f"sha256:{hexd}", "size": len(data)}
        if annotations:
            desc["annotations"] = annotations
        return desc


def plugin_tar_gz(wasm):
    """tar.gz with one entry, plugin.wasm, independent of the clock and the user."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("plugin.wasm")
        info.size, info.mtime, info.mode = len(wasm), 0, 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(wasm))
    tar_bytes = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0, compresslevel=9) as g:
        g.write(tar_bytes)
    return tar_bytes, gz.getvalue()


def abi_versions(wasm):
    """The proxy-wasm ABI version(s) the module exports (proxy_abi_version_X_Y_Z)."""
    return sorted({m.decode() for m in re.findall(rb"proxy_abi_version_[0-9_]+[0-9]", wasm)})


def write_plugin(out_dir, name, wasm, root_ids):
    root = Path(out_dir) / name
    if root.exists():
        shutil.rmtree(root)  # stale blobs of an older build must not linger
    lay = Layout(root)
    title = {TITLE: "plugin.wasm"}

    tar_bytes, tgz = plugin_tar_gz(wasm)
    layer = lay.blob(tgz, OCI_LAYER_GZIP, title)
    config = lay.blob(canonical_json({
        "architecture": "wasm", "os": "wasip1", "config": {},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]},
    }), OCI_CONFIG)
    compat = lay.blob(canonical_json({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer],
        "annotations": {"module.wasm.image/variant": "compat", TITLE: name},
    }), OCI_MANIFEST, {REF_NAME: "compat"})

    runtime = canonical_json({"type": "envoy_proxy", "abiVersions": abi_versions(wasm),
                              "config": {"root_ids": list(root_ids)}})
    runtime_desc = lay.blob(runtime, WASM_CONFIG)
    oci = lay.blob(canonical_json({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": runtime_desc,
        "layers": [dict(runtime_desc, annotations={TITLE: "runtime-config.json"}),
                   lay.blob(wasm, WASM_LAYER, title)],
        "annotations": {TITLE: name},
    }), OCI_MANIFEST, {REF_NAME: "oci"})

    (root / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    (root / "index.json").write_bytes(canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                      "manifests": [compat, oci]}))
    return {"compat": compat["digest"], "oci": oci["digest"],
            "wasm": "sha256:" + hashlib.sha256(wasm).hexdigest(), "layout": str(root)}


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    out = Path(argv[1])
    summary = {}
    for spec in argv[2:]:
        name, _, rest = spec.partition("=")
        path, _, ids = rest.partition(":")
        if not name or not path:
            sys.exit(f"bad plugin spec {spec!r}: want NAME=PATH.wasm[:root_id,...]")
        wasm = Path(path).read_bytes()
        if wasm[:4] != b"\0asm":
            sys.exit(f"{path} is not a Wasm module")
        summary[name] = write_plugin(out, name, wasm, [i for i in ids.split(",") if i])
    for name, s in summary.items():
        print(f"{s['layout']}  compat {s['compat']}  oci {s['oci']}  module {s['wasm']}")
    (out / "digests.json").write_bytes(canonical_json(summary) + b"\n")


if __name__ == "__main__":
    main(sys.argv)
