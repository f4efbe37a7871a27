"""Independent oracle for kensa's rpm matching, using rpm's own comparison (python3-rpm).

    rpm_oracle.py sample ADVISORIES.tar.gz ECOSYSTEM      -> JSON list of packages to build
    rpm_oracle.py expect ADVISORIES.tar.gz ECOSYSTEM INSTALLED.json -> JSON list of [id, name, evr]

Matching follows the OSV schema's evaluation (events sorted by version, introduced/fixed/
last_affected/limit; `versions` lists), plus kensa's documented module-stream policy: modular
packages (modularity label or `.module` release) only match module-build entries, of their own
stream when the advisory summary names streams; non-modular packages never match module builds.
"""
import functools
import json
import re
import sys
import tarfile

import rpm

SEVERITIES = {"critical", "important", "moderate", "low", "high", "medium"}


def load(path, ecosystem):
    records = []
    with tarfile.open(path) as tf:
        for m in sorted(tf.getmembers(), key=lambda m: m.name):
            if m.isfile() and m.name.endswith(".json"):
                rec = json.load(tf.extractfile(m))
                if rec.get("withdrawn"):
                    continue
                if any(a.get("package", {}).get("ecosystem") == ecosystem for a in rec.get("affected", [])):
                    records.append(rec)
    return records


def evr(s):
    e, sep, vr = s.partition(":")
    if not sep or not e.isdigit():
        e, vr = "0", s
    v, _, r = vr.rpartition("-")
    if not v:
        v, r = r, ""
    return (e, v, r)


def cmp(a, b):
    return rpm.labelCompare(evr(a), evr(b))


def range_affected(rng, v):
    limits = [e["limit"] for e in rng["events"] if "limit" in e and e["limit"] != "*"]
    if limits and not any(cmp(v, l) < 0 for l in limits):
        return False

    def key(e):
        return next(iter(e.values()))

    def order(a, b):
        va, vb = key(a), key(b)
        if "introduced" in a and va == "0":
            return 0 if ("introduced" in b and vb == "0") else -1
        if "introduced" in b and vb == "0":
            return 1
        return cmp(va, vb)

    events = sorted([e for e in rng["events"] if "limit" not in e], key=functools.cmp_to_key(order))
    affected = False
    for e in events:
        if "introduced" in e and (e["introduced"] == "0" or cmp(v, e["introduced"]) >= 0):
            affected = True
        elif "fixed" in e and cmp(v, e["fixed"]) >= 0:
            affected = False
        elif "last_affected" in e and cmp(v, e["last_affected"]) > 0:
            affected = False
    return affected


def entry_affected(entry, v):
    if v in entry.get("versions", []):
        return True
    return any(r["type"] == "ECOSYSTEM" and range_affected(r, v) for r in entry.get("ranges", []))


def is_module(s):
    return ".module_el" in s or ".module+el" in s or ".module_" in s


def entry_modular(entry):
    return any(is_module(v) for r in entry.get("ranges", []) for e in r["events"] for v in e.values())


def streams(summary):
    head, sep, rest = summary.partition(": ")
    text = rest if sep and head.lower() in SEVERITIES else summary
    out = []
    for w in re.split(r"[\s,]+", text):
        m = re.fullmatch(r"([A-Za-z0-9._+-]+):([A-Za-z0-9._+-]+)", w)
        if m:
            out.append((m.group(1), m.group(2)))
    return out


def fixed_versions(entry):
    return [e["fixed"] for r in entry.get("ranges", []) for e in r["events"] if "fixed" in e]


def expect(records, ecosystem, installed):
    out = set()
    for p in installed:
        version = (f"{p['epoch']}:" if p.get("epoch") is not None else "") + f"{p['version']}-{p['release']}"
        label = p.get("modularity_label") or ""
        pkg_modular = bool(label) or is_module(p["release"])
        for rec in records:
            entries = [a for a in rec["affected"] if a["package"]["ecosystem"] == ecosystem and a["package"]["name"] == p["name"]]
            if not entries:
                continue
            entries = [a for a in entries if entry_modular(a) == pkg_modular]
            if pkg_modular and label:
                mname, stream = label.split(":")[:2]
                st = streams(rec.get("summary", ""))
                if st and (mname, stream) not in st:
                    entries = []
                if len(st) > 1 and re.fullmatch(r"[0-9.]+", stream):
                    def up(a):
                        for f in fixed_versions(a):
                            ver = evr(f)[1]
                            if ver == stream or ver.startswith(stream + "."):
                                return True
                        return False
                    if any(up(a) for a in entries):
                        entries = [a for a in entries if up(a)]
            if any(entry_affected(a, version) for a in entries):
                out.add((rec["id"], p["name"], version))
    return sorted(out)


def sample(records, ecosystem):
    """~30 package names with their fixed versions: plain, with epochs, and modular."""
    plain, epoch, modular = {}, {}, {}
    for rec in records:
        for a in rec["affected"]:
            if a["package"]["ecosystem"] != ecosystem:
                continue
            name = a["package"]["name"]
            for f in fixed_versions(a):
                if is_module(f):
                    st = streams(rec.get("summary", ""))
                    if len(st) == 1:
                        modular.setdefault(name, (f, st[0]))
                elif re.match(r"^[1-9][0-9]*:", f):
                    epoch.setdefault(name, f)
                else:
                    plain.setdefault(name, f)
    pick = lambda d, n: [(k, d[k]) for k in sorted(d)[:: max(1, len(d) // n)][:n]]
    out = []

    def add(tier, name, e, v, r, label=None):
        out.append({"tier": tier, "name": name, "epoch": e, "version": v, "release": r, "modularity_label": label})

    for name, f in pick(plain, 16) + pick(epoch, 8):
        e, v, r = evr(f)
        e = int(e) if f[0].isdigit() and ":" in f.split("-")[0] else None
        add("at", name, e, v, r)
        add("above", name, e, v, r + ".1")
        add("below", name, e, v, "0")
        if e:
            add("noepoch", name, None, v, r + ".9")
    for name, (f, (mname, stream)) in pick(modular, 6):
        e, v, r = evr(f)
        e = int(e) if re.match(r"^[1-9][0-9]*:", f) else None
        label = f"{mname}:{stream}:9010020221107180413:9"
        add("at", name, e, v, r, label)
        add("below", name, e, v, "0." + r.split(".", 1)[1] if "." in r else "0", label)
        add("otherstream", name, e, v, "0.1." + r.split(".", 1)[1] if "." in r else "0.1", f"{mname}:0.0.kensa-other:1:1")
        add("nonmodular", name, e, v, "0")
    return out


if __name__ == "__main__":
    mode, path, eco = sys.argv[1:4]
    recs = load(path, eco)
    if mode == "sample":
        json.dump(sample(recs, eco), sys.stdout, indent=1)
    else:
        installed = json.load(open(sys.argv[4]))
        json.dump(expect(recs, eco, installed), sys.stdout, indent=1)
