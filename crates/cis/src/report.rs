//! Report formats: table (terminal), JSON, CSV, HTML (per rule: result, rationale, evidence).

use std::fmt::Write;

use crate::engine::Report;

pub fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_default()
}

pub fn table(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} — {}\nprofile {}\ntarget {}\n", r.benchmark.title, r.benchmark.id, r.profile.id, r.target);
    let _ = writeln!(s, "{:<14} {:<8} RULE", "RESULT", "SEVERITY");
    for rule in r.rules.iter().filter(|x| x.result != "notselected") {
        let id = rule.rule_id.strip_prefix("xccdf_org.ssgproject.content_rule_").unwrap_or(&rule.rule_id);
        let _ = writeln!(s, "{:<14} {:<8} {}  {}", rule.result, rule.severity, id, rule.title);
    }
    let counts: Vec<String> = r.summary.iter().filter(|(k, _)| *k != "notselected").map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(s, "\n{}\nscore {:.2}", counts.join(" "), r.score);
    let others: Vec<String> = r.scores.iter().skip(1).map(|x| format!("{} {}/{}", x.system.trim_start_matches("urn:xccdf:scoring:"), x.score, x.maximum)).collect();
    if !others.is_empty() {
        let _ = writeln!(s, "({})", others.join(", "));
    }
    s
}

fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}

pub fn csv(r: &Report) -> String {
    let mut s = String::from("rule_id,title,severity,result\n");
    for rule in &r.rules {
        let _ = writeln!(s, "{},{},{},{}", csv_field(&rule.rule_id), csv_field(&rule.title), csv_field(&rule.severity), rule.result);
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn html(r: &Report) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>kensa CIS report: {}</title><style>\
body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}}\
.pass{{background:#dfd}}.fail{{background:#fdd}}.error,.unknown{{background:#ffd}}details pre{{white-space:pre-wrap;font-size:90%}}</style></head><body>\
<h1>{}</h1><p>Profile <b>{}</b> ({})<br>Target {}<br>Started {} — ended {}<br>Score <b>{:.2}</b></p><p>",
        esc(&r.profile.title),
        esc(&r.benchmark.title),
        esc(&r.profile.title),
        esc(&r.profile.id),
        esc(&r.target),
        esc(&r.started_at),
        esc(&r.ended_at),
        r.score
    );
    for (k, v) in r.summary.iter().filter(|(k, _)| *k != "notselected") {
        let _ = write!(s, "{}: {} &nbsp; ", esc(k), v);
    }
    s.push_str("</p><table><tr><th>Result</th><th>Severity</th><th>Rule</th></tr>");
    for rule in r.rules.iter().filter(|x| x.result != "notselected") {
        let _ = write!(s, "<tr class=\"{}\"><td>{}</td><td>{}</td><td><b>{}</b><br><code>{}</code>", esc(&rule.result), esc(&rule.result), esc(&rule.severity), esc(&rule.title), esc(&rule.rule_id));
        if !rule.rationale.is_empty() {
            let _ = write!(s, "<details><summary>Rationale</summary><p>{}</p></details>", esc(&rule.rationale));
        }
        if !rule.checks.is_empty() {
            s.push_str("<details><summary>Evidence</summary>");
            for c in &rule.checks {
                let _ = write!(s, "<p>{} <code>{}</code>: {}</p>", esc(c.definition_title.as_deref().unwrap_or("")), esc(c.definition.as_deref().unwrap_or("")), esc(&c.result));
                for (k, v) in &c.exports {
                    let _ = write!(s, "<p>value <code>{}</code> = <code>{}</code></p>", esc(k), esc(v));
                }
                for t in &c.tests {
                    let _ = write!(s, "<p>test <code>{}</code> ({}): <b>{}</b>, object {:?}, {} item(s)</p>", esc(&t.test_id), esc(&t.comment), t.result.as_str(), t.flag, t.items.len());
                    if !t.items.is_empty() || !t.messages.is_empty() {
                        let body = serde_json::to_string_pretty(&(&t.items, &t.messages)).unwrap_or_default();
                        let _ = write!(s, "<pre>{}</pre>", esc(&body));
                    }
                }
            }
            s.push_str("</details>");
        }
        s.push_str("</td></tr>");
    }
    s.push_str("</table></body></html>\n");
    s
}
