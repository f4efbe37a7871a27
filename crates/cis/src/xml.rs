//! A compact XML element tree built with a streaming parser.
//!
//! SCAP datastreams are large (the RHEL 9 one is 22 MB) and mostly prose, fixes and references we
//! never read. [`parse`] streams the document with quick-xml and keeps only elements we use:
//! subtrees named in `skip` are dropped while parsing, element and attribute names are interned
//! local names (namespaces are not needed to tell SCAP elements apart), and XHTML prose is
//! flattened into its parent's text.

use std::collections::HashMap;

use quick_xml::events::Event;
use quick_xml::Reader;

/// An element: local name, attributes (local names), its text (direct text and flattened XHTML
/// descendants) and element children.
#[derive(Debug, Default)]
pub struct Node {
    pub name: &'static str,
    pub attrs: Vec<(&'static str, Box<str>)>,
    pub text: Box<str>,
    pub children: Vec<Node>,
}

impl Node {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| *k == name).map(|(_, v)| &**v)
    }

    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Text of the first child named `name`, trimmed.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// Every descendant (depth first, self included) named `name`.
    pub fn descendants<'a>(&'a self, name: &'a str, out: &mut Vec<&'a Node>) {
        if self.name == name {
            out.push(self);
        }
        for c in &self.children {
            c.descendants(name, out);
        }
    }

    /// Whether `xsi:nil="true"` is set.
    pub fn is_nil(&self) -> bool {
        self.attr("nil") == Some("true")
    }
}

/// Parse errors name the byte offset and the element being read.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("malformed XML at byte {offset}: {message}")]
    Malformed { offset: u64, message: String },
    #[error("XML nesting deeper than {0} elements")]
    TooDeep(usize),
}

/// Elements whose content is XHTML prose: descendants become text of the element.
const PROSE: &[&str] = &["description", "rationale", "warning", "title", "question_text"];

const MAX_DEPTH: usize = 256;

#[derive(Default)]
struct Interner(HashMap<Box<str>, &'static str>);

impl Interner {
    fn get(&mut self, s: &str) -> &'static str {
        if let Some(v) = self.0.get(s) {
            return v;
        }
        // Element and attribute names come from a bounded vocabulary; a hostile document with
        // millions of distinct names is refused below instead of leaking without bound.
        let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
        self.0.insert(s.into(), leaked);
        leaked
    }
}

static INTERNER: std::sync::Mutex<Option<Interner>> = std::sync::Mutex::new(None);
const MAX_NAMES: usize = 20_000;

fn local(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|&b| b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

/// Parses `data` into a tree. Subtrees whose local name is in `skip` are dropped.
pub fn parse(data: &[u8], skip: &[&str]) -> Result<Node, XmlError> {
    parse_reader(data, skip)
}

/// [`parse`] from a buffered reader, so a large file is never held in memory whole.
pub fn parse_reader<R: std::io::BufRead>(input: R, skip: &[&str]) -> Result<Node, XmlError> {
    let mut guard = INTERNER.lock().unwrap_or_else(|e| e.into_inner());
    let interner = guard.get_or_insert_with(Interner::default);
    let mut reader = Reader::from_reader(input);
    reader.config_mut().trim_text(false);
    reader.config_mut().expand_empty_elements = false;
    let mut stack: Vec<Node> = vec![Node { name: "#document", ..Default::default() }];
    // Text buffers parallel to `stack` (Box<str> is immutable).
    let mut texts: Vec<String> = vec![String::new()];
    // >0 while inside a skipped subtree; >0 prose depth while inside prose.
    let mut skip_depth = 0usize;
    let mut prose_depth = 0usize;
    let mut buf = Vec::new();
    let err = |reader: &Reader<R>, m: String| XmlError::Malformed { offset: reader.buffer_position(), message: m };
    loop {
        let ev = reader.read_event_into(&mut buf).map_err(|e| err(&reader, e.to_string()))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let lname = local(e.name().as_ref()).to_vec();
                if skip_depth > 0 {
                    if !empty {
                        skip_depth += 1;
                    }
                    continue;
                }
                let name = std::str::from_utf8(&lname).map_err(|_| err(&reader, "element name is not UTF-8".into()))?;
                if prose_depth > 0 {
                    // XHTML inside prose: keep its text only (line breaks for br/p/li).
                    if matches!(name, "br" | "p" | "li" | "pre") {
                        texts.last_mut().unwrap().push('\n');
                    }
                    if !empty {
                        prose_depth += 1;
                    }
                    continue;
                }
                if skip.contains(&name) {
                    if !empty {
                        skip_depth = 1;
                    }
                    continue;
                }
                if interner.0.len() > MAX_NAMES {
                    return Err(err(&reader, "too many distinct element names".into()));
                }
                let mut node = Node { name: interner.get(name), ..Default::default() };
                for a in e.attributes().with_checks(false) {
                    let a = a.map_err(|e| err(&reader, format!("bad attribute in <{name}>: {e}")))?;
                    let key = std::str::from_utf8(local(a.key.as_ref())).map_err(|_| err(&reader, "attribute name is not UTF-8".into()))?;
                    if key == "xmlns" || a.key.as_ref().starts_with(b"xmlns:") {
                        continue;
                    }
                    let value = a.unescape_value().map_err(|e| err(&reader, format!("bad attribute value in <{name}>: {e}")))?;
                    node.attrs.push((interner.get(key), value.into_owned().into_boxed_str()));
                }
                if empty {
                    stack.last_mut().unwrap().children.push(node);
                } else {
                    if stack.len() > MAX_DEPTH {
                        return Err(XmlError::TooDeep(MAX_DEPTH));
                    }
                    if PROSE.contains(&name) {
                        prose_depth = 1;
                    }
                    stack.push(node);
                    texts.push(String::new());
                }
            }
            Event::End(_) => {
                if skip_depth > 0 {
                    skip_depth -= 1;
                    continue;
                }
                if prose_depth > 1 {
                    prose_depth -= 1;
                    continue;
                }
                prose_depth = 0;
                if stack.len() <= 1 {
                    return Err(err(&reader, "unbalanced end tag".into()));
                }
                let mut node = stack.pop().unwrap();
                let text = texts.pop().unwrap();
                node.text = text.into_boxed_str();
                stack.last_mut().unwrap().children.push(node);
            }
            Event::Text(t) if skip_depth == 0 => {
                let s = t.unescape().map_err(|e| err(&reader, format!("bad text: {e}")))?;
                texts.last_mut().unwrap().push_str(&s);
            }
            Event::CData(t) if skip_depth == 0 => {
                texts.last_mut().unwrap().push_str(&String::from_utf8_lossy(&t));
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if stack.len() != 1 {
        return Err(XmlError::Malformed { offset: reader.buffer_position(), message: format!("unclosed element <{}>", stack.last().unwrap().name) });
    }
    let mut doc = stack.pop().unwrap();
    if doc.children.is_empty() {
        return Err(XmlError::Malformed { offset: 0, message: "no root element".into() });
    }
    Ok(doc.children.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_skips_and_flattens_prose() {
        let doc = br#"<?xml version="1.0"?><a:root xmlns:a="u" x="1"><fix>drop<b/></fix><description>Hello <h:code xmlns:h="x">world</h:code>!</description><c y="&lt;"/></a:root>"#;
        let n = parse(doc, &["fix"]).unwrap();
        assert_eq!(n.name, "root");
        assert_eq!(n.attr("x"), Some("1"));
        assert_eq!(n.children.len(), 2);
        assert_eq!(&*n.children[0].text, "Hello world!");
        assert_eq!(n.children[1].attr("y"), Some("<"));
    }

    #[test]
    fn malformed_is_an_error() {
        assert!(parse(b"<a><b></a>", &[]).is_err());
        assert!(parse(b"<a>", &[]).is_err());
        assert!(parse(b"", &[]).is_err());
    }
}
