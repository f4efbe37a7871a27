// Oracle for npm matching with node-semver: OSV evaluation over GHSA records.
//   node npm_oracle.js SEMVER_MODULE_DIR GHSA_DIR INSTALLED.json -> [[id, name, version], ...]
const fs = require('fs');
const path = require('path');
const [semverDir, ghsaDir, installedPath] = process.argv.slice(2);
const semver = require(semverDir);

// Short versions in advisories (`introduced: "1.0"`) mean 1.0.0 (as osv-scanner reads them);
// node-semver rejects them, so pad the numeric core first.
const pad = (v) => (/^\d+(\.\d+)?([-+].*)?$/.test(v) ? v.replace(/^(\d+(?:\.\d+)?)/, (c) => c + '.0'.repeat(3 - c.split('.').length)) : v);
const sv = (v) => new semver.SemVer(pad(v), { loose: true });
const cmp = (a, b) => semver.compare(sv(a), sv(b));

function rangeAffected(rng, v) {
  const limits = rng.events.filter((e) => 'limit' in e && e.limit !== '*').map((e) => e.limit);
  if (limits.length && !limits.some((l) => cmp(v, l) < 0)) return false;
  const val = (e) => Object.values(e)[0];
  const zero = (e) => 'introduced' in e && e.introduced === '0';
  const events = rng.events.filter((e) => !('limit' in e)).map((e, i) => [e, i]);
  events.sort(([a, i], [b, j]) => {
    if (zero(a) || zero(b)) return zero(a) && zero(b) ? i - j : zero(a) ? -1 : 1;
    return cmp(val(a), val(b)) || i - j;
  });
  let affected = false;
  for (const [e] of events) {
    if ('introduced' in e && (e.introduced === '0' || cmp(v, e.introduced) >= 0)) affected = true;
    else if ('fixed' in e && cmp(v, e.fixed) >= 0) affected = false;
    else if ('last_affected' in e && cmp(v, e.last_affected) > 0) affected = false;
  }
  return affected;
}

function entryAffected(a, v) {
  if ((a.versions || []).some((x) => x === v || (semver.valid(pad(x), { loose: true }) && cmp(x, v) === 0))) return true;
  return (a.ranges || []).some((r) => {
    if (r.type !== 'SEMVER' && r.type !== 'ECOSYSTEM') return false;
    try {
      return rangeAffected(r, v);
    } catch (e) {
      return false;
    }
  });
}

const installed = JSON.parse(fs.readFileSync(installedPath, 'utf8')).filter((p) => p.ecosystem === 'npm');
const out = new Set();
for (const f of fs.readdirSync(ghsaDir).filter((f) => f.endsWith('.json')).sort()) {
  const rec = JSON.parse(fs.readFileSync(path.join(ghsaDir, f), 'utf8'));
  if (rec.withdrawn) continue;
  for (const a of rec.affected || []) {
    if (!a.package || a.package.ecosystem !== 'npm') continue;
    for (const p of installed) {
      if (p.name !== a.package.name || !semver.valid(p.version, { loose: true })) continue;
      if (entryAffected(a, p.version)) out.add(JSON.stringify([rec.id, p.name, p.version]));
    }
  }
}
console.log(JSON.stringify([...out].sort().map((s) => JSON.parse(s))));
