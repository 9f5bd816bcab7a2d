//! The email tests' SMTP server: a real SMTP peer over TCP on a free port of 127.0.0.1,
//! inside the test binary, so `cargo test` needs no mail server installed by hand.
//!
//! It speaks what lettre (setia's SMTP client) speaks: EHLO with PIPELINING (commands are
//! answered in order however many arrive at once), MAIL, RCPT, DATA with dot-stuffing, RSET,
//! NOOP and QUIT, and refuses commands out of order with 503. Each message's DATA is answered
//! with the next entry of the script the test gives it, then 250 for ever:
//!
//! - `250`: accept and keep the message;
//! - `4xx` / `5xx`: a temporary / permanent refusal; nothing is kept;
//! - `stall`: keep the message as accepted, then never answer (a client that dies now has
//!   had its message accepted but never heard so).
//!
//! Every answer is logged. Kept messages are parsed with `mail-parser` into the JSON shape the
//! tests read (headers, decoded text and HTML, attachments, the MIME structure).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};

use mail_parser::{
    Address, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};
use serde_json::{json, Value};

/// The longest command line accepted (RFC 5321 §4.5.3.1.4 allows 512 octets).
const MAX_COMMAND: usize = 2048;
/// The largest message accepted, as advertised with SIZE.
const MAX_MESSAGE: usize = 32 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Reply {
    Accept,
    Refuse(u16),
    Stall,
}

impl Reply {
    fn parse(word: &str) -> Reply {
        match word {
            "250" => Reply::Accept,
            "stall" => Reply::Stall,
            code => {
                let code: u16 = code
                    .parse()
                    .unwrap_or_else(|_| panic!("a reply of the test SMTP server: {code:?}"));
                assert!((400..600).contains(&code), "4xx or 5xx, not {code}");
                Reply::Refuse(code)
            }
        }
    }

    fn logged(&self) -> String {
        match self {
            Reply::Accept => "250".into(),
            Reply::Refuse(code) => code.to_string(),
            Reply::Stall => "stall".into(),
        }
    }
}

/// One message the server accepted.
struct Kept {
    mail_from: String,
    rcpt_tos: Vec<String>,
    raw: Vec<u8>,
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    replies: Vec<String>,
    kept: Vec<Kept>,
    connections: Vec<TcpStream>,
    stopped: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    stopped: Condvar,
}

/// The server, listening until dropped.
pub struct Receiver {
    shared: Arc<Shared>,
    port: u16,
}

impl Receiver {
    /// `replies`: what successive messages are answered (`451,451`, `550`, `stall`); every
    /// message after them is accepted.
    pub fn start(replies: &str) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        shared.state.lock().unwrap().script = replies
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(Reply::parse)
            .collect();
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let mut state = accepting.state.lock().unwrap();
                if state.stopped {
                    return;
                }
                if let Ok(clone) = stream.try_clone() {
                    state.connections.push(clone);
                }
                drop(state);
                let shared = accepting.clone();
                std::thread::spawn(move || {
                    // A peer that hangs up mid-conversation is the peer's business.
                    let _ = Session::new(&shared).serve(stream);
                });
            }
        });
        Receiver { shared, port }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// How many messages the server has accepted (stalled ones included).
    pub fn count(&self) -> usize {
        self.shared.state.lock().unwrap().kept.len()
    }

    /// What the server answered each message's DATA, in order (`250`, `451`, `stall`, …).
    pub fn replies(&self) -> Vec<String> {
        self.shared.state.lock().unwrap().replies.clone()
    }

    /// The raw bytes of every message accepted, as received after dot-unstuffing.
    pub fn raw_messages(&self) -> Vec<Vec<u8>> {
        let state = self.shared.state.lock().unwrap();
        state.kept.iter().map(|k| k.raw.clone()).collect()
    }

    /// Every message accepted, parsed: `headers` (`[[name, value]]`, unfolded, encoded words
    /// decoded), `text` and `html` (the first of each, decoded), `attachments` (the other
    /// leaf parts: `content_type`, `content_id`, `disposition`, `size`, `png_signature`),
    /// `structure` (every part's content type, depth first), `mail_from` and `rcpt_tos`.
    pub fn messages(&self) -> Vec<Value> {
        let state = self.shared.state.lock().unwrap();
        state
            .kept
            .iter()
            .map(|kept| {
                let mut parsed = parse(&kept.raw);
                parsed["mail_from"] = json!(kept.mail_from);
                parsed["rcpt_tos"] = json!(kept.rcpt_tos);
                parsed
            })
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock().unwrap();
        state.stopped = true;
        for connection in state.connections.drain(..) {
            let _ = connection.shutdown(Shutdown::Both);
        }
        drop(state);
        self.shared.stopped.notify_all();
        // Wakes the accepting thread, which then sees `stopped` and returns.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One SMTP conversation.
struct Session<'a> {
    shared: &'a Shared,
    mail_from: Option<String>,
    rcpt_tos: Vec<String>,
}

impl<'a> Session<'a> {
    fn new(shared: &'a Shared) -> Session<'a> {
        Session {
            shared,
            mail_from: None,
            rcpt_tos: Vec::new(),
        }
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_tos.clear();
    }

    fn serve(mut self, stream: TcpStream) -> std::io::Result<()> {
        let mut writer = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        writer.write_all(b"220 receiver.test ESMTP setia test receiver\r\n")?;
        let mut line = Vec::new();
        loop {
            line.clear();
            if read_line(&mut reader, &mut line, MAX_COMMAND)? == 0 {
                return Ok(());
            }
            let command = String::from_utf8_lossy(&line);
            let command = command.trim_end_matches(['\r', '\n']);
            let (verb, argument) = command.split_once(' ').unwrap_or((command, ""));
            let answer: String = match verb.to_ascii_uppercase().as_str() {
                "EHLO" => {
                    self.reset();
                    format!(
                        "250-receiver.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE {MAX_MESSAGE}\r\n"
                    )
                }
                "HELO" => {
                    self.reset();
                    "250 receiver.test\r\n".into()
                }
                "MAIL" => match path(argument, "FROM:") {
                    _ if self.mail_from.is_some() => "503 5.5.1 Nested MAIL command\r\n".into(),
                    Some(from) => {
                        self.mail_from = Some(from);
                        "250 2.1.0 OK\r\n".into()
                    }
                    None => "501 5.5.4 Syntax: MAIL FROM:<address>\r\n".into(),
                },
                "RCPT" => match path(argument, "TO:") {
                    _ if self.mail_from.is_none() => "503 5.5.1 MAIL first\r\n".into(),
                    Some(to) if !to.is_empty() => {
                        self.rcpt_tos.push(to);
                        "250 2.1.5 OK\r\n".into()
                    }
                    _ => "501 5.5.4 Syntax: RCPT TO:<address>\r\n".into(),
                },
                "DATA" if self.rcpt_tos.is_empty() => "503 5.5.1 RCPT first\r\n".into(),
                "DATA" => {
                    writer.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
                    let Some(raw) = read_data(&mut reader)? else {
                        return Ok(());
                    };
                    let answer = self.deliver(raw);
                    self.reset();
                    match answer {
                        Some(answer) => answer,
                        None => return Ok(()),
                    }
                }
                "RSET" => {
                    self.reset();
                    "250 2.0.0 OK\r\n".into()
                }
                "NOOP" => "250 2.0.0 OK\r\n".into(),
                "QUIT" => {
                    writer.write_all(b"221 2.0.0 Bye\r\n")?;
                    return Ok(());
                }
                _ => "500 5.5.2 Command not recognised\r\n".into(),
            };
            writer.write_all(answer.as_bytes())?;
        }
    }

    /// Answers one message by the script; `None` for a stall, once the server stops.
    fn deliver(&mut self, raw: Vec<u8>) -> Option<String> {
        let mut state = self.shared.state.lock().unwrap();
        let reply = state.script.pop_front().unwrap_or(Reply::Accept);
        state.replies.push(reply.logged());
        if matches!(reply, Reply::Accept | Reply::Stall) {
            state.kept.push(Kept {
                mail_from: self.mail_from.clone().unwrap_or_default(),
                rcpt_tos: self.rcpt_tos.clone(),
                raw,
            });
        }
        match reply {
            Reply::Accept => Some("250 2.0.0 OK: queued\r\n".into()),
            Reply::Refuse(code) if code < 500 => {
                Some(format!("{code} 4.3.0 Try again later (test receiver)\r\n"))
            }
            Reply::Refuse(code) => Some(format!("{code} 5.7.1 Rejected (test receiver)\r\n")),
            Reply::Stall => {
                while !state.stopped {
                    state = self.shared.stopped.wait(state).unwrap();
                }
                None
            }
        }
    }
}

/// Reads one line of at most `limit` bytes (the rest of a longer line is read and dropped).
fn read_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<usize> {
    let read = reader.read_until(b'\n', line)?;
    line.truncate(limit);
    Ok(read)
}

/// The message after `DATA`, up to the line holding a single dot, dot-unstuffed; `None` when
/// the peer hangs up first.
fn read_data(reader: &mut impl BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let mut message = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(Some(message));
        }
        let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
        if message.len() + unstuffed.len() <= MAX_MESSAGE {
            message.extend_from_slice(unstuffed);
        }
    }
}

/// The address of `FROM:<a@b> SIZE=…` or `TO:<a@b>`.
fn path(argument: &str, keyword: &str) -> Option<String> {
    let head = argument.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = argument[keyword.len()..].trim_start();
    let inside = rest.strip_prefix('<')?;
    let end = inside.find('>')?;
    Some(inside[..end].to_owned())
}

fn parse(raw: &[u8]) -> Value {
    let message = MessageParser::default()
        .parse(raw)
        .expect("the test SMTP server received a parseable message");
    let headers: Vec<Value> = message.parts[0]
        .headers
        .iter()
        .map(|header| {
            let value = raw_value(&message, header.offset_start, header.offset_end);
            // Encoded words (RFC 2047) are shown decoded, as a mail client shows them.
            let value = if value.contains("=?") {
                decoded(&header.value).unwrap_or(value)
            } else {
                value
            };
            json!([header.name.as_str(), value])
        })
        .collect();
    let mut parsed = json!({
        "headers": headers,
        "text": null,
        "html": null,
        "attachments": [],
        "structure": [],
    });
    walk(&message, 0, &mut parsed);
    parsed
}

/// A text or address header decoded, addresses written back as `"Name" <address>` (the
/// name quoted when it holds a character RFC 5322 reserves).
fn decoded(value: &HeaderValue) -> Option<String> {
    match value {
        HeaderValue::Text(text) => Some(text.to_string()),
        HeaderValue::Address(Address::List(addresses)) => Some(
            addresses
                .iter()
                .map(|a| {
                    let address = a.address.as_deref().unwrap_or_default();
                    match a.name.as_deref() {
                        Some(name) if name.contains(|c| "()<>[]:;@\\,.\"".contains(c)) => {
                            format!("\"{}\" <{address}>", name.replace('"', "\\\""))
                        }
                        Some(name) => format!("{name} <{address}>"),
                        None => address.to_owned(),
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        _ => None,
    }
}

/// A header's value as written, unfolded and trimmed.
fn raw_value(message: &Message, start: u32, end: u32) -> String {
    let bytes = &message.raw_message[start as usize..end as usize];
    String::from_utf8_lossy(bytes)
        .replace("\r\n", "")
        .replace('\n', "")
        .trim()
        .to_owned()
}

fn walk(message: &Message, id: u32, parsed: &mut Value) {
    let part: &MessagePart = &message.parts[id as usize];
    let kind = part
        .content_type()
        .map(|t| match &t.c_subtype {
            Some(sub) => format!("{}/{}", t.c_type, sub),
            None => t.c_type.to_string(),
        })
        .unwrap_or_else(|| "text/plain".into())
        .to_ascii_lowercase();
    parsed["structure"]
        .as_array_mut()
        .unwrap()
        .push(json!(kind));
    match &part.body {
        PartType::Multipart(children) => {
            for child in children {
                walk(message, *child, parsed);
            }
        }
        PartType::Text(text) if kind == "text/plain" && parsed["text"].is_null() => {
            parsed["text"] = json!(text);
        }
        PartType::Html(html) if kind == "text/html" && parsed["html"].is_null() => {
            parsed["html"] = json!(html);
        }
        _ => {
            let payload = part.contents();
            let content_id = part
                .headers
                .iter()
                .find(|h| h.name.as_str().eq_ignore_ascii_case("Content-ID"))
                .map(|h| raw_value(message, h.offset_start, h.offset_end));
            let disposition = part
                .content_disposition()
                .map(|d| d.c_type.to_ascii_lowercase());
            parsed["attachments"].as_array_mut().unwrap().push(json!({
                "content_type": kind,
                "content_id": content_id,
                "disposition": disposition,
                "size": payload.len(),
                "png_signature": payload.starts_with(b"\x89PNG\r\n\x1a\n"),
            }));
        }
    }
}

/// The server itself, spoken to over a raw socket: what lettre relies on, byte for byte.
mod protocol {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpStream;

    use super::Receiver;

    struct Client {
        reader: BufReader<TcpStream>,
        writer: TcpStream,
    }

    impl Client {
        fn connect(receiver: &Receiver) -> Client {
            let stream = TcpStream::connect(("127.0.0.1", receiver.port)).unwrap();
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let mut client = Client {
                reader: BufReader::new(stream.try_clone().unwrap()),
                writer: stream,
            };
            assert!(client.answer().starts_with("220 "));
            client
        }

        fn send(&mut self, bytes: &str) {
            self.writer.write_all(bytes.as_bytes()).unwrap();
        }

        /// One whole answer, multi-line answers joined.
        fn answer(&mut self) -> String {
            let mut all = String::new();
            loop {
                let mut line = String::new();
                self.reader.read_line(&mut line).unwrap();
                all.push_str(&line);
                if line.as_bytes().get(3) != Some(&b'-') {
                    return all;
                }
            }
        }
    }

    #[test]
    fn pipelined_commands_are_answered_in_order_and_dots_are_unstuffed() {
        let receiver = Receiver::start("451");
        let mut client = Client::connect(&receiver);
        client.send("EHLO client.test\r\n");
        let ehlo = client.answer();
        assert!(
            ehlo.contains("250-PIPELINING") && ehlo.contains("250 SIZE"),
            "{ehlo}"
        );
        // Everything up to DATA in one write, as a pipelining client sends it.
        client.send("MAIL FROM:<a@toko.example> SIZE=100\r\nRCPT TO:<b@example.co.id>\r\nRCPT TO:<c@example.co.id>\r\nDATA\r\n");
        assert!(client.answer().starts_with("250 "));
        assert!(client.answer().starts_with("250 "));
        assert!(client.answer().starts_with("250 "));
        assert!(client.answer().starts_with("354 "));
        client.send("Subject: first\r\n\r\nrefused\r\n.\r\n");
        assert!(
            client.answer().starts_with("451 "),
            "the script's first reply"
        );
        client.send("MAIL FROM:<a@toko.example>\r\nRCPT TO:<b@example.co.id>\r\nDATA\r\n");
        for expected in ["250 ", "250 ", "354 "] {
            assert!(client.answer().starts_with(expected));
        }
        client.send(
            "Subject: second\r\nTo: =?utf-8?b?U2l0aSA8UmFoYXl1Pg==?= <b@example.co.id>\r\n\r\n..leading dot\r\n...two\r\nlast\r\n.\r\n",
        );
        assert!(client.answer().starts_with("250 "));
        client.send("QUIT\r\n");
        assert!(client.answer().starts_with("221 "));

        assert_eq!(receiver.replies(), ["451", "250"]);
        assert_eq!(
            receiver.raw_messages(),
            [b"Subject: second\r\nTo: =?utf-8?b?U2l0aSA8UmFoYXl1Pg==?= <b@example.co.id>\r\n\r\n.leading dot\r\n..two\r\nlast\r\n".to_vec()]
        );
        let messages = receiver.messages();
        assert_eq!(
            messages[0]["rcpt_tos"],
            serde_json::json!(["b@example.co.id"])
        );
        assert_eq!(messages[0]["mail_from"], "a@toko.example");
        assert_eq!(
            messages[0]["headers"][0],
            serde_json::json!(["Subject", "second"])
        );
        assert_eq!(
            messages[0]["headers"][1],
            serde_json::json!(["To", "\"Siti <Rahayu>\" <b@example.co.id>"]),
            "an encoded word decoded, the name quoted"
        );
        assert_eq!(messages[0]["text"], ".leading dot\r\n..two\r\nlast\r\n");
    }

    #[test]
    fn commands_out_of_order_and_unknown_ones_are_refused() {
        let receiver = Receiver::start("");
        let mut client = Client::connect(&receiver);
        client.send("HELO client.test\r\n");
        assert!(client.answer().starts_with("250 "));
        client.send("RCPT TO:<b@example.co.id>\r\n");
        assert!(client.answer().starts_with("503 "), "RCPT before MAIL");
        client.send("DATA\r\n");
        assert!(client.answer().starts_with("503 "), "DATA before RCPT");
        client.send("MAIL FROM:b@example.co.id\r\n");
        assert!(
            client.answer().starts_with("501 "),
            "a path without brackets"
        );
        client.send("MAIL FROM:<>\r\n");
        assert!(
            client.answer().starts_with("250 "),
            "the null sender of a bounce"
        );
        client.send("MAIL FROM:<a@toko.example>\r\n");
        assert!(client.answer().starts_with("503 "), "nested MAIL");
        client.send("RSET\r\nXYZZY\r\n");
        assert!(client.answer().starts_with("250 "));
        assert!(client.answer().starts_with("500 "));
        assert!(receiver.replies().is_empty());
        assert_eq!(receiver.count(), 0);
    }

    #[test]
    fn a_stalled_message_is_kept_and_never_answered_until_the_server_stops() {
        let receiver = Receiver::start("stall");
        let mut client = Client::connect(&receiver);
        client
            .reader
            .get_ref()
            .set_read_timeout(Some(std::time::Duration::from_millis(300)))
            .unwrap();
        client.send("EHLO c\r\nMAIL FROM:<a@t.example>\r\nRCPT TO:<b@t.example>\r\nDATA\r\n");
        for _ in 0..4 {
            client.answer();
        }
        client.send("Subject: s\r\n\r\nbody\r\n.\r\n");
        let mut line = String::new();
        let waited = client.reader.read_line(&mut line);
        assert!(waited.is_err(), "no answer while stalled: {line:?}");
        assert_eq!(receiver.count(), 1);
        assert_eq!(receiver.replies(), ["stall"]);
        drop(receiver);
        client
            .reader
            .get_ref()
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut rest = String::new();
        let closed = client.reader.read_line(&mut rest).unwrap();
        assert_eq!(
            closed, 0,
            "the stopped server hangs up without answering: {rest:?}"
        );
    }
}
