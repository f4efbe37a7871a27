"""Oracle for PyPI and Maven matching: PyPI with pypa `packaging`, Maven with Maven's own
ComparableVersion (MavenCompare.java over the maven-artifact jar).

    lang_oracle.py PYPA.tar.gz GHSA_DIR INSTALLED.json MAVEN_JAR -> [[id, name, version], ...]

INSTALLED.json: [{"ecosystem": "PyPI"|"Maven", "name": ..., "version": ...}].
"""
import glob
import json
import os
import re
import subprocess
import sys
import tarfile

from packaging.version import InvalidVersion, Version
from ruamel.yaml import YAML

from osv_eval import entry_affected

HERE = os.path.dirname(os.path.abspath(__file__))


def pep503(n):
    return re.sub(r"[-_.]+", "-", n).lower()


def load_records(pypa, ghsa_dir):
    recs = []
    yaml = YAML(typ="base")  # every scalar as the text written: versions are strings
    with tarfile.open(pypa) as tf:
        for m in sorted(tf.getmembers(), key=lambda m: m.name):
            if m.isfile() and m.name.endswith((".yaml", ".yml")):
                recs.append(yaml.load(tf.extractfile(m).read().decode()))
            elif m.isfile() and m.name.endswith(".json"):
                recs.append(json.load(tf.extractfile(m)))
    for f in sorted(glob.glob(os.path.join(ghsa_dir, "*.json"))):
        recs.append(json.load(open(f)))
    return [r for r in recs if isinstance(r, dict) and not r.get("withdrawn")]


def pypi_cmp(a, b):
    try:
        va, vb = Version(a), Version(b)
    except InvalidVersion as e:
        raise ValueError(str(e))
    return (va > vb) - (va < vb)


def pypi_eq(a, b):
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return False


def maven_cmp_factory(jar, pairs):
    pairs = sorted(pairs)
    src = os.path.join(HERE, "MavenCompare.java")
    out = subprocess.run(["java", "-cp", jar, src], input="".join(f"{a}\t{b}\n" for a, b in pairs), capture_output=True, text=True, check=True).stdout.split()
    table = {p: int(c) for p, c in zip(pairs, out)}
    return lambda a, b: table[(a, b)]


def main():
    pypa, ghsa, installed_path, jar = sys.argv[1:5]
    recs = load_records(pypa, ghsa)
    installed = json.load(open(installed_path))
    # Entries per (ecosystem, normalised name).
    index = {}
    for r in recs:
        for a in r.get("affected", []) or []:
            pkg = a.get("package") or {}
            eco = pkg.get("ecosystem")
            if eco not in ("PyPI", "Maven"):
                continue
            name = pep503(pkg["name"]) if eco == "PyPI" else pkg["name"]
            index.setdefault((eco, name), []).append((r["id"], a))
    # Maven: every comparison the evaluation may need, answered by Maven in one batch.
    pairs = set()
    for p in installed:
        if p["ecosystem"] != "Maven":
            continue
        for _, a in index.get(("Maven", p["name"]), []):
            vs = [p["version"]] + [v for rg in a.get("ranges", []) or [] for e in rg["events"] for v in e.values()]
            pairs.update((x, y) for x in vs for y in vs)
    mcmp = maven_cmp_factory(jar, pairs) if pairs else None
    out = set()
    for p in installed:
        eco, v = p["ecosystem"], p["version"]
        key = (eco, pep503(p["name"]) if eco == "PyPI" else p["name"])
        if eco == "PyPI":
            try:
                Version(v)
            except InvalidVersion:
                continue
        for vid, a in index.get(key, []):
            hit = entry_affected(a, v, pypi_cmp, pypi_eq) if eco == "PyPI" else entry_affected(a, v, mcmp, lambda x, y: mcmp(x, y) == 0)
            if hit:
                out.add((vid, p["name"], v))
    json.dump(sorted(out), sys.stdout, indent=1)


if __name__ == "__main__":
    main()
