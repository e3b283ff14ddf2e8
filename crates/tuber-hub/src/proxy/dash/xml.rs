//! The MPD as a small element tree: only the elements and attributes the
//! collector reads, bounded in depth.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::MAX_DEPTH;

/// The MPD elements the walk looks at; anything else is skipped whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Mpd,
    Period,
    AdaptationSet,
    Representation,
    BaseUrl,
    SegmentTemplate,
    SegmentTimeline,
    S,
    SegmentList,
    SegmentUrl,
    SegmentBase,
    Initialization,
}

impl Kind {
    pub(super) fn of(local_name: &str) -> Option<Self> {
        Some(match local_name {
            "MPD" => Self::Mpd,
            "Period" => Self::Period,
            "AdaptationSet" => Self::AdaptationSet,
            "Representation" => Self::Representation,
            "BaseURL" => Self::BaseUrl,
            "SegmentTemplate" => Self::SegmentTemplate,
            "SegmentTimeline" => Self::SegmentTimeline,
            "S" => Self::S,
            "SegmentList" => Self::SegmentList,
            "SegmentURL" => Self::SegmentUrl,
            "SegmentBase" => Self::SegmentBase,
            "Initialization" => Self::Initialization,
            _ => return None,
        })
    }
}

/// One kept element: attributes by local name, text (`BaseURL` only).
#[derive(Debug)]
pub(super) struct Node {
    pub(super) kind: Kind,
    pub(super) attrs: Vec<(String, String)>,
    pub(super) text: String,
    pub(super) children: Vec<Node>,
}

impl Node {
    pub(super) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    }

    pub(super) fn children(&self, kind: Kind) -> impl Iterator<Item = &Node> {
        self.children.iter().filter(move |c| c.kind == kind)
    }

    pub(super) fn child(&self, kind: Kind) -> Option<&Node> {
        self.children(kind).next()
    }
}

pub(super) fn element(e: &BytesStart<'_>) -> Option<Node> {
    let kind = Kind::of(e.local_name().as_ref())?;
    let attrs = e
        .attributes()
        .filter_map(Result::ok)
        .filter_map(|a| {
            let value = a.normalized_value(XmlVersion::Implicit1_0).ok()?;
            Some((a.key.local_name().as_ref().to_string(), value.into_owned()))
        })
        .collect();
    Some(Node {
        kind,
        attrs,
        text: String::new(),
        children: Vec::new(),
    })
}

/// Builds the tree of kept elements under the root `MPD`. Malformed XML
/// ends the parse; what was read until then is kept.
pub(super) fn parse(text: &str) -> Option<Node> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Node> = Vec::new();
    let mut root = None;
    // Depth inside a skipped subtree (unknown element, or too deep).
    let mut skipping = 0usize;
    loop {
        let event = match reader.read_event() {
            Ok(Event::Eof) | Err(_) => break,
            Ok(event) => event,
        };
        match event {
            Event::Start(e) => {
                if skipping > 0 {
                    skipping += 1;
                } else if let (Some(node), true) = (element(&e), stack.len() < MAX_DEPTH) {
                    stack.push(node);
                } else {
                    skipping = 1;
                }
            }
            Event::Empty(e) if skipping == 0 && stack.len() < MAX_DEPTH => {
                if let Some(node) = element(&e) {
                    close(&mut stack, &mut root, node);
                }
            }
            Event::End(_) => {
                if skipping > 0 {
                    skipping -= 1;
                } else if let Some(node) = stack.pop() {
                    close(&mut stack, &mut root, node);
                }
            }
            Event::Text(t) if skipping == 0 => append_text(&mut stack, &t.xml10_content()),
            Event::CData(t) if skipping == 0 => append_text(&mut stack, &t.xml10_content()),
            Event::GeneralRef(r) if skipping == 0 => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    Ok(None) => resolve_predefined_entity(&r).map(str::to_string),
                    Err(_) => None,
                };
                if let Some(s) = resolved {
                    append_text(&mut stack, &s);
                }
            }
            _ => {}
        }
        if root.is_some() {
            break;
        }
    }
    // A truncated or malformed document: close what is open.
    while let Some(node) = stack.pop() {
        close(&mut stack, &mut root, node);
    }
    root
}

pub(super) fn close(stack: &mut [Node], root: &mut Option<Node>, node: Node) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None if node.kind == Kind::Mpd && root.is_none() => *root = Some(node),
        None => {}
    }
}

pub(super) fn append_text(stack: &mut [Node], text: &str) {
    if let Some(node) = stack.last_mut().filter(|n| n.kind == Kind::BaseUrl) {
        node.text.push_str(text);
    }
}
