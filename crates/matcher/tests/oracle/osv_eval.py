"""The OSV schema's evaluation algorithm (https://ossf.github.io/osv-schema/#evaluation), over a
comparison function supplied by the caller (the ecosystem's upstream implementation)."""
import functools


def range_affected(rng, v, cmp):
    limits = [e["limit"] for e in rng["events"] if "limit" in e and e["limit"] != "*"]
    if limits and not any(cmp(v, l) < 0 for l in limits):
        return False

    def order(a, b):
        va, vb = next(iter(a.values())), next(iter(b.values()))
        za, zb = "introduced" in a and va == "0", "introduced" in b and vb == "0"
        if za or zb:
            return (zb - za) if not (za and zb) else 0
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


def entry_affected(entry, v, cmp, eq=None):
    """`eq`: version equality for the `versions` list (string equality when None)."""
    for x in entry.get("versions", []) or []:
        if x == v or (eq is not None and eq(x, v)):
            return True
    for r in entry.get("ranges", []) or []:
        if r["type"] in ("ECOSYSTEM", "SEMVER"):
            try:
                if range_affected(r, v, cmp):
                    return True
            except ValueError:
                pass  # a version the ecosystem rejects: the range is not evaluable
    return False
