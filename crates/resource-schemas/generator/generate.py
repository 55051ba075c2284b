#!/usr/bin/env python3
"""Turn the CloudFormation registry schemas bundled in cfn-lint into cloudpg's data file.

Usage:
    python3 generate.py [--wheel PATH] [--out PATH]

Without --wheel the pinned cfn-lint wheel is downloaded with pip (PyPI only).
The output is deterministic: the same wheel always gives the same bytes
(sorted keys, no timestamps in the gzip header).

The file is a pack (see `pack`): a small gzip'd JSON index with every type's cheap
parts, then each type's property schemas compressed on their own, so the server
decompresses at startup only the index and a type's schemas when it is first used.

What the data keeps per type, and why:
  - typeName, description
  - properties: each property's JSON schema with `$ref`s into `definitions`
    inlined. A definition that refers back to itself (directly or through
    others) is kept once under `definitions` and referenced from the inlined
    tree as {"$ref": "#/definitions/Name"}, so recursive shapes stay finite.
  - required, primaryIdentifier, additionalIdentifiers, readOnlyProperties,
    writeOnlyProperties, createOnlyProperties, conditionalCreateOnlyProperties
  - handlers with their permissions; the list handler's handlerSchema is
    normalised to {"params": [{"name", "property"?, "schema"?}], "required": [...],
    "oneOf": [[...]], "anyOf": [[...]]}
  - tagging
  - regions: indices into the top-level region list (every region file but sam.json)
"""

import argparse
import glob
import gzip
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib

CFN_LINT_VERSION = "1.58.0"
SCHEMA_ROOT = "cfnlint/data/schemas/"
# Region whose schema wins when a type's schema differs between regions.
PREFERRED_REGION = "us-east-1"
# Keys of a property schema that carry no meaning for cloudpg or the emulator.
DROPPED_SCHEMA_KEYS = {"$comment", "markdownDescription", "examples",
                       "propertyTransform", "$schema", "arrayType"}
TOP_LEVEL_LISTS = ["required", "readOnlyProperties", "writeOnlyProperties",
                   "createOnlyProperties", "conditionalCreateOnlyProperties"]


def fetch_wheel():
    target = tempfile.mkdtemp(prefix="cfnlint-")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                    "-d", target, f"cfn-lint=={CFN_LINT_VERSION}"], check=True)
    (wheel,) = glob.glob(os.path.join(target, "cfn_lint-*.whl"))
    return wheel


def read_json(zf, name):
    with zf.open(name) as f:
        return json.load(f)


class Resolver:
    """Inlines `#/definitions/X` references of one schema, keeping recursion finite."""

    def __init__(self, definitions):
        self.definitions = definitions or {}
        self.recursive = {}

    def resolve(self, node, stack=()):
        if isinstance(node, list):
            return [self.resolve(v, stack) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        out = {}
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            name = ref[len("#/definitions/"):]
            target = self.definitions.get(name)
            if target is None:
                out["type"] = node.get("type", "object")
            elif name in stack:
                self.recursive.setdefault(name, None)
                out["$ref"] = ref
            else:
                out.update(self.resolve(target, stack + (name,)))
        for key, value in node.items():
            if key == "$ref" or key in DROPPED_SCHEMA_KEYS:
                continue
            if key in ("properties", "patternProperties", "definitions") and isinstance(value, dict):
                out[key] = {k: self.resolve(v, stack) for k, v in value.items()}
            else:
                out[key] = self.resolve(value, stack)
        return out

    def recursive_definitions(self):
        done = {}
        while len(done) < len(self.recursive):
            for name in list(self.recursive):
                if name not in done:
                    done[name] = self.resolve(self.definitions[name], (name,))
        return done


def normalise_handler_schema(hs):
    params = []
    for name, schema in sorted((hs.get("properties") or {}).items()):
        param = {"name": name}
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if isinstance(ref, str) and "#/properties/" in ref:
            param["property"] = ref.split("#/properties/", 1)[1]
        else:
            param["schema"] = {k: v for k, v in schema.items() if k not in DROPPED_SCHEMA_KEYS}
        params.append(param)
    out = {"params": params, "required": list(hs.get("required") or [])}
    for key in ("oneOf", "anyOf"):
        if key in hs:
            out[key] = [list(alt.get("required") or []) for alt in hs[key]]
    return out


def convert(schema, region_indices):
    resolver = Resolver(schema.get("definitions"))
    props = {name: resolver.resolve(p) for name, p in schema.get("properties", {}).items()}
    out = {
        "typeName": schema["typeName"],
        "description": schema.get("description", ""),
        "properties": props,
        "primaryIdentifier": schema.get("primaryIdentifier", []),
        "regions": region_indices,
    }
    recursive = resolver.recursive_definitions()
    if recursive:
        out["definitions"] = recursive
    for key in TOP_LEVEL_LISTS:
        if schema.get(key):
            out[key] = schema[key]
    if schema.get("additionalIdentifiers"):
        out["additionalIdentifiers"] = schema["additionalIdentifiers"]
    handlers = {}
    for op, handler in (schema.get("handlers") or {}).items():
        h = {"permissions": handler.get("permissions", [])}
        if handler.get("timeoutInMinutes"):
            h["timeoutInMinutes"] = handler["timeoutInMinutes"]
        if op == "list" and handler.get("handlerSchema"):
            h["handlerSchema"] = normalise_handler_schema(handler["handlerSchema"])
        handlers[op] = h
    if handlers:
        out["handlers"] = handlers
    if schema.get("tagging"):
        out["tagging"] = schema["tagging"]
    return out


def generate(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        provider_files = sorted(n for n in names if n.startswith(SCHEMA_ROOT + "providers/")
                                and n.endswith(".json") and not n.endswith("/sam.json"))
        regions = [os.path.basename(n)[:-5] for n in provider_files]
        schema_date = None
        for n in names:
            if n == SCHEMA_ROOT + "version.json":
                schema_date = read_json(zf, n).get("schema_date")
        type_regions = {}
        type_hash = {}
        for index, path in enumerate(provider_files):
            region = regions[index]
            for type_name, h in read_json(zf, path).items():
                type_regions.setdefault(type_name, []).append(index)
                if region == PREFERRED_REGION or type_name not in type_hash:
                    type_hash[type_name] = h
        types = []
        for type_name in sorted(type_hash):
            schema = read_json(zf, f"{SCHEMA_ROOT}resources/{type_hash[type_name]}.json")
            types.append(convert(schema, type_regions[type_name]))
    return {
        "format": 2,
        "source": f"cfn-lint {CFN_LINT_VERSION}",
        "schemaDate": schema_date,
        "regions": regions,
        "types": types,
    }


PACK_MAGIC = b"CPGSCHM2"


def pack(data):
    """The data as a pack: `PACK_MAGIC`, the index's length (u64 little-endian), the index
    (gzip'd JSON: `data` with each type's `properties` and `definitions` replaced by
    `"schemas": [offset, length]`), then each type's `{"definitions", "properties"}` as raw
    deflate at that offset after the index."""
    blobs = bytearray()
    index_types = []
    for t in data["types"]:
        t = dict(t)
        schemas = {"properties": t.pop("properties")}
        if "definitions" in t:
            schemas["definitions"] = t.pop("definitions")
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
        blob = deflate.compress(dumps(schemas)) + deflate.flush()
        t["schemas"] = [len(blobs), len(blob)]
        blobs += blob
        index_types.append(t)
    index = gzip_bytes(dumps(dict(data, types=index_types)))
    return PACK_MAGIC + struct.pack("<Q", len(index)) + index + bytes(blobs)


def dumps(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def gzip_bytes(raw):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    return buf.getvalue()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", help="path of cfn_lint-%s-py3-none-any.whl" % CFN_LINT_VERSION)
    parser.add_argument("--out", default=os.path.join(here, "..", "data", "schemas.pack"))
    args = parser.parse_args()
    wheel = args.wheel or fetch_wheel()
    data = generate(wheel)
    packed = pack(data)
    with open(args.out, "wb") as f:
        f.write(packed)
    print(f"{len(data['types'])} types, {len(data['regions'])} regions, "
          f"{len(packed)} bytes written to {args.out}")


if __name__ == "__main__":
    main()
