//! A small XML element tree: enough to read annotation files leniently and to write
//! back the elements we do not understand, unchanged, on a round-trip.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// One XML element with its attributes, text and child elements.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct XmlElement {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    /// Text content with entities resolved and surrounding whitespace trimmed.
    pub text: String,
    pub children: Vec<XmlElement>,
}

/// Where and why a document failed to parse.
#[derive(Debug, Clone, PartialEq)]
pub struct XmlSyntaxError {
    /// Byte offset in the document.
    pub position: u64,
    /// The 1-based line of `position`.
    pub line: usize,
    /// The 1-based column (in characters) of `position` in its line.
    pub column: usize,
    pub message: String,
}

impl XmlSyntaxError {
    /// The error at byte `position` of `xml`, with its line and column.
    fn at(xml: &str, position: u64, message: String) -> Self {
        let before = &xml.as_bytes()[..(position as usize).min(xml.len())];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        Self {
            position,
            line: before.iter().filter(|&&b| b == b'\n').count() + 1,
            column: String::from_utf8_lossy(&before[line_start..])
                .chars()
                .count()
                + 1,
            message,
        }
    }
}

impl std::fmt::Display for XmlSyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (line {}, column {})",
            self.message, self.line, self.column
        )
    }
}

/// Deepest nesting accepted; deeper documents are rejected rather than recursed into.
const MAX_DEPTH: usize = 256;

impl XmlElement {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            ..Self::default()
        }
    }

    /// The first child element called `name`.
    pub fn child(&self, name: &str) -> Option<&XmlElement> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Text of the first child called `name`, if that child exists.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Parses a whole document and returns its root element. Only the five predefined
    /// entities and character references are resolved; any other entity is an error
    /// (so entity-expansion bombs cannot work).
    pub fn parse_document(xml: &str) -> Result<XmlElement, XmlSyntaxError> {
        let mut reader = Reader::from_str(xml);
        reader.config_mut().check_end_names = true;
        let mut stack: Vec<XmlElement> = Vec::new();
        let mut root: Option<XmlElement> = None;
        loop {
            let fail = |reader: &Reader<&[u8]>, message: String| {
                XmlSyntaxError::at(xml, reader.buffer_position(), message)
            };
            let event = reader
                .read_event()
                .map_err(|e| fail(&reader, e.to_string()))?;
            match event {
                Event::Start(start) => {
                    if root.is_some() {
                        return Err(fail(&reader, "content after the root element".into()));
                    }
                    if stack.len() >= MAX_DEPTH {
                        return Err(fail(&reader, format!("nesting deeper than {MAX_DEPTH}")));
                    }
                    stack.push(element_from_start(&start).map_err(|m| fail(&reader, m))?);
                }
                Event::Empty(start) => {
                    let element = element_from_start(&start).map_err(|m| fail(&reader, m))?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None if root.is_none() => root = Some(element),
                        None => return Err(fail(&reader, "content after the root element".into())),
                    }
                }
                Event::End(_) => {
                    let mut element = stack
                        .pop()
                        .ok_or_else(|| fail(&reader, "unexpected closing tag".into()))?;
                    element.text = element.text.trim().to_string();
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => root = Some(element),
                    }
                }
                Event::Text(text) => {
                    let content = text.xml_content(quick_xml::XmlVersion::Implicit1_0);
                    match stack.last_mut() {
                        Some(current) => current.text.push_str(&content),
                        None if content.trim().is_empty() => {}
                        None => return Err(fail(&reader, "text outside the root element".into())),
                    }
                }
                Event::CData(data) => {
                    let content = data.into_inner().into_owned();
                    if let Some(current) = stack.last_mut() {
                        current.text.push_str(&content);
                    }
                }
                Event::GeneralRef(reference) => {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => match &*reference.into_inner() {
                            "amp" => "&".into(),
                            "lt" => "<".into(),
                            "gt" => ">".into(),
                            "quot" => "\"".into(),
                            "apos" => "'".into(),
                            other => {
                                return Err(fail(&reader, format!("unknown entity &{other};")))
                            }
                        },
                        Err(e) => return Err(fail(&reader, e.to_string())),
                    };
                    match stack.last_mut() {
                        Some(current) => current.text.push_str(&resolved),
                        None => {
                            return Err(fail(&reader, "entity outside the root element".into()))
                        }
                    }
                }
                Event::Eof => {
                    if !stack.is_empty() {
                        return Err(fail(
                            &reader,
                            format!(
                                "document ends inside <{}>",
                                stack.last().map(|e| e.name.as_str()).unwrap_or("")
                            ),
                        ));
                    }
                    return root.ok_or_else(|| fail(&reader, "no root element".into()));
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            }
        }
    }

    /// Writes this element as LabelImg's pretty printer does: one tab per level,
    /// text-only elements on one line, an empty element as `<name/>`.
    pub fn write_pretty(&self, out: &mut String, depth: usize) {
        for _ in 0..depth {
            out.push('\t');
        }
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attributes {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            out.push_str(&escape_attribute(v));
            out.push('"');
        }
        if self.children.is_empty() {
            if self.text.is_empty() {
                out.push_str("/>\n");
            } else {
                out.push('>');
                out.push_str(&escape_text(&self.text));
                out.push_str("</");
                out.push_str(&self.name);
                out.push_str(">\n");
            }
            return;
        }
        out.push_str(">\n");
        for child in &self.children {
            child.write_pretty(out, depth + 1);
        }
        for _ in 0..depth {
            out.push('\t');
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push_str(">\n");
    }
}

fn element_from_start(start: &BytesStart<'_>) -> Result<XmlElement, String> {
    let name = start.name().as_ref().to_string();
    if name.is_empty() {
        // `<\r/>`: quick-xml ends the name at the whitespace; the writer would then
        // produce `</>`, which nothing reads back.
        return Err("an element without a name".into());
    }
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| e.to_string())?;
        let key = attribute.key.as_ref().to_string();
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?
            .into_owned();
        attributes.push((key, value));
    }
    Ok(XmlElement {
        name,
        attributes,
        text: String::new(),
        children: Vec::new(),
    })
}

/// Escapes text content as libxml2 does: `&`, `<`, `>` (and CR).
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

fn escape_attribute(s: &str) -> String {
    escape_text(s).replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `voc` fuzz target: `<\r/>` read as an element named "", which the
    /// writer turned into `</>` (output that does not parse). Now refused on reading.
    #[test]
    fn fuzz_nameless_element_is_refused() {
        for xml in [
            "<annotation><\r/></annotation>",
            "<annotation><\t></\t></annotation>",
        ] {
            let err = XmlElement::parse_document(xml).unwrap_err().to_string();
            assert!(
                err.contains("without a name") || err.contains("expected"),
                "{err}"
            );
        }
        let ann = crate::formats::voc::parse("<annotation><\r/></annotation>");
        assert!(ann.is_err());
    }

    #[test]
    fn parses_nested_elements_entities_and_attributes() {
        let doc =
            r#"<?xml version="1.0"?><a v="yes"><b>x &amp; y &#65;</b><c/><d> <e>1</e> </d></a>"#;
        let root = XmlElement::parse_document(doc).unwrap();
        assert_eq!(root.name, "a");
        assert_eq!(root.attribute("v"), Some("yes"));
        assert_eq!(root.child_text("b"), Some("x & y A"));
        assert_eq!(root.child_text("c"), Some(""));
        assert_eq!(root.child("d").unwrap().child_text("e"), Some("1"));
    }

    #[test]
    fn rejects_broken_documents_with_a_position() {
        // Each document fails for its own reason (the message names it), at the byte
        // offset just past the construct that broke it.
        for (bad, message, position) in [
            ("<a><b></a>", "expected `</b>`, but `</a>` was found", 10),
            ("<a>", "document ends inside <a>", 3),
            ("", "no root element", 0),
            ("<a>&bomb;</a>", "unknown entity &bomb;", 9),
            ("<a></a><b/>", "content after the root element", 11),
            ("text", "text outside the root element", 4),
        ] {
            let err = XmlElement::parse_document(bad).unwrap_err();
            assert!(err.message.contains(message), "{bad}: {err}");
            assert_eq!(err.position, position, "{bad}: {err}");
        }
    }

    /// The position is given as a line and column (it was "at byte 120").
    #[test]
    fn errors_give_the_line_and_column() {
        let doc = "<annotation>\n<size/>\n<object><name>Cola</name>\n<bndbox><xmin>1</xmin></ymin>";
        let err = XmlElement::parse_document(doc).unwrap_err();
        assert_eq!((err.line, err.column), (4, 30), "{err}");
        assert!(
            err.to_string()
                .ends_with("but `</ymin>` was found (line 4, column 30)"),
            "{err}"
        );
        let err = XmlElement::parse_document("<a>\n  é<b>&x;</b></a>").unwrap_err();
        assert_eq!((err.line, err.column), (2, 10), "{err}");
    }

    #[test]
    fn pretty_printing_round_trips() {
        let doc = "<a k=\"v\">\n\t<b>1 &lt; 2</b>\n\t<c/>\n\t<d>\n\t\t<e>x</e>\n\t</d>\n</a>\n";
        let root = XmlElement::parse_document(doc).unwrap();
        let mut out = String::new();
        root.write_pretty(&mut out, 0);
        assert_eq!(out, doc);
    }
}
